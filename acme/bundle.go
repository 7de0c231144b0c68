package acme

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Bundle is an issued certificate: its chain (leaf first, DER, as the CA
// sent it, RFC 8555 §7.4.2), the leaf's private key (PKCS #8 DER) and
// what the node needs to know of it without parsing.
type Bundle struct {
	// Directory is the CA it came from (its directory URL): a frontend
	// serves only certificates of its own --acme-directory, so that one
	// pointed at a staging CA cannot spread its certificates.
	Directory string `json:"directory"`
	// Names are the DNS names it was ordered for, normalized.
	Names     []string  `json:"names"`
	Chain     [][]byte  `json:"chain"`
	Key       []byte    `json:"key"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
}

// NormalizeNames lower-cases, trims, sorts and de-duplicates names.
func NormalizeNames(names []string) []string {
	var out []string
	for _, n := range names {
		if n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), "."); n != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// storeKey is the key of a CA's certificate for a set of names in the
// store: the directory and the normalized names, comma-separated.
func storeKey(directory string, names []string) string {
	return directory + " " + strings.Join(NormalizeNames(names), ",")
}

// RenewAt is when a third of the certificate's lifetime remains: the
// time to renew (the margin Let's Encrypt recommends for its 90-day
// certificates, 30 days).
func (b *Bundle) RenewAt() time.Time {
	life := b.NotAfter.Sub(b.NotBefore)
	return b.NotAfter.Add(-life / 3)
}

// Lifetime is NotAfter - NotBefore.
func (b *Bundle) Lifetime() time.Duration { return b.NotAfter.Sub(b.NotBefore) }

// Certificate is the bundle as a tls.Certificate, its leaf parsed.
func (b *Bundle) Certificate() (*tls.Certificate, error) {
	if len(b.Chain) == 0 {
		return nil, errors.New("a certificate bundle without a certificate")
	}
	leaf, err := x509.ParseCertificate(b.Chain[0])
	if err != nil {
		return nil, fmt.Errorf("certificate bundle: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(b.Key)
	if err != nil {
		return nil, fmt.Errorf("certificate bundle's key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("certificate bundle's key cannot sign")
	}
	if !publicKeysEqual(signer.Public(), leaf.PublicKey) {
		return nil, errors.New("certificate bundle: the key does not match the certificate")
	}
	return &tls.Certificate{Certificate: b.Chain, PrivateKey: signer, Leaf: leaf}, nil
}

// check verifies that the bundle is whole and that its leaf is for every
// one of its names.
func (b *Bundle) check() error {
	c, err := b.Certificate()
	if err != nil {
		return err
	}
	for _, n := range b.Names {
		if err := c.Leaf.VerifyHostname(n); err != nil {
			return fmt.Errorf("certificate bundle: %w", err)
		}
	}
	if !c.Leaf.NotBefore.Equal(b.NotBefore) || !c.Leaf.NotAfter.Equal(b.NotAfter) {
		return errors.New("certificate bundle: its dates are not the certificate's")
	}
	return nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// newer reports whether a should replace b (same names): it expires
// later; on a tie, it was issued later; then the larger leaf bytes. A
// total order, so that every node keeps the same bundle whatever order
// the bundles reach it in.
func newer(a, b *Bundle) bool {
	if !a.NotAfter.Equal(b.NotAfter) {
		return a.NotAfter.After(b.NotAfter)
	}
	if !a.NotBefore.Equal(b.NotBefore) {
		return a.NotBefore.After(b.NotBefore)
	}
	return bytes.Compare(leafOf(a), leafOf(b)) > 0
}

func leafOf(b *Bundle) []byte {
	if len(b.Chain) == 0 {
		return nil
	}
	return b.Chain[0]
}
