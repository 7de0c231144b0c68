package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/homing-mail/homing/mail"
)

// The key algorithms (the k= tag of the key record, RFC 6376 §3.6.1,
// RFC 8463 §4.2).
const (
	AlgorithmRSA     = "rsa"
	AlgorithmEd25519 = "ed25519"
)

// rsaBits is the size of the RSA keys made here (RFC 8301 §3.2: at least
// 1024, 2048 recommended).
const rsaBits = 2048

// ErrBadAlgorithm: the algorithm is neither rsa nor ed25519.
var ErrBadAlgorithm = mail.PermanentError("dkim: the algorithm is not rsa or ed25519")

// Key is one signing key of a domain: a selector with its private key.
// A Key is a value; the Keyring hands out copies.
type Key struct {
	Domain    string `json:"domain"`
	Selector  string `json:"selector"`
	Algorithm string `json:"algorithm"`
	// Private is the private key, PKCS #8 DER.
	Private []byte    `json:"private"`
	Created time.Time `json:"created"`
	// Retired is when a newer key of the domain replaced this one; a
	// retired key signs nothing, and its record should stay published
	// until the mail signed with it has been verified.
	Retired time.Time `json:"retired,omitzero"`
}

// Active reports whether the key signs.
func (k Key) Active() bool { return k.Retired.IsZero() }

// newKey makes a key of algorithm for domain and selector.
func newKey(domain, selector, algorithm string, now time.Time) (Key, error) {
	var priv crypto.Signer
	var err error
	switch algorithm {
	case AlgorithmRSA:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case AlgorithmEd25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return Key{}, ErrBadAlgorithm
	}
	if err != nil {
		return Key{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Key{}, err
	}
	return Key{Domain: domain, Selector: selector, Algorithm: algorithm, Private: der, Created: now.UTC()}, nil
}

// Signer returns the private key.
func (k Key) Signer() (crypto.Signer, error) {
	p, err := x509.ParsePKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("dkim key %s of %s: %w", k.Selector, k.Domain, err)
	}
	s, ok := p.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dkim key %s of %s: not a signing key", k.Selector, k.Domain)
	}
	return s, nil
}

// RecordName is where the key's record is published (RFC 6376 §3.6.2.1).
func (k Key) RecordName() string { return k.Selector + "._domainkey." + k.Domain }

// RecordValue is the TXT record to publish: the public key (RFC 6376
// §3.6.1; for Ed25519 the raw 32 bytes, RFC 8463 §4.2).
func (k Key) RecordValue() (string, error) {
	s, err := k.Signer()
	if err != nil {
		return "", err
	}
	var pub []byte
	switch p := s.Public().(type) {
	case *rsa.PublicKey:
		if pub, err = x509.MarshalPKIXPublicKey(p); err != nil {
			return "", err
		}
	case ed25519.PublicKey:
		pub = p
	default:
		return "", errors.New("dkim: unknown public key type")
	}
	return "v=DKIM1; k=" + k.Algorithm + "; p=" + base64.StdEncoding.EncodeToString(pub), nil
}
