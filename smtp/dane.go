package smtp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/homing-mail/homing/mail"
)

// TLSA is one TLSA record (RFC 6698 §2.1).
type TLSA struct {
	Usage, Selector, MatchingType uint8
	Data                          []byte
}

// TLSAResolver looks up the TLSA records of _port._tcp.host and says
// whether the answer was validated (the AD bit of a validating resolver,
// RFC 7672 §2.2). A name without records is a *net.DNSError with
// IsNotFound.
type TLSAResolver interface {
	LookupTLSA(ctx context.Context, port int, host string) ([]TLSA, bool, error)
}

// The TLSA usages SMTP uses (RFC 7672 §3.1: PKIX-TA and PKIX-EE, 0 and
// 1, are not usable for SMTP).
const (
	usageDANETA = 2
	usageDANEEE = 3
)

// danePolicy is what DANE requires of one host: verified TLS matching
// records, or nothing (nil) when the host has no usable, validated TLSA
// records (opportunistic TLS, RFC 7672 §2.2).
type danePolicy struct {
	host    string
	records []TLSA
}

// dane looks up the DANE policy of host h (RFC 7672 §2.2): a lookup
// failure is a temporary failure of the host (a validating resolver's
// SERVFAIL may be an attack); no records, unvalidated ones or only
// unusable ones leave it opportunistic.
func (c *Client) dane(ctx context.Context, h host) (*danePolicy, *mail.Result) {
	if c.cfg.DANE == nil {
		return nil, nil
	}
	if _, err := netip.ParseAddr(h.name); err == nil {
		return nil, nil // an address has no TLSA name
	}
	recs, secure, err := c.cfg.DANE.LookupTLSA(ctx, h.port, h.name)
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		return nil, nil
	case err != nil && !secure:
		return nil, ptr(mail.Temp(mail.StatusTLSFailed, fmt.Sprintf("DANE: the TLSA records of %s could not be looked up: %v", h.name, err)))
	case !secure:
		return nil, nil
	}
	var usable []TLSA
	for _, r := range recs {
		if (r.Usage == usageDANETA || r.Usage == usageDANEEE) && r.Selector <= 1 && r.MatchingType <= 2 {
			usable = append(usable, r)
		}
	}
	if len(usable) == 0 {
		return nil, nil
	}
	return &danePolicy{host: h.name, records: usable}, nil
}

// tlsConfig verifies the server by its TLSA records, not by the Web PKI.
func (p *danePolicy) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName: p.host,
		MinVersion: tls.VersionTLS12,
		// The chain is checked against the TLSA records instead
		// (VerifyConnection), RFC 7672 §3.1.
		InsecureSkipVerify: true, //nolint:gosec // verified by VerifyConnection
		VerifyConnection:   p.verify,
	}
}

// verify checks the server's chain against the records: DANE-EE matches
// the leaf alone (no name or date checks, RFC 7672 §3.1.1); DANE-TA a
// certificate of the chain, which then must anchor a valid chain for the
// host name (§3.1.2).
func (p *danePolicy) verify(cs tls.ConnectionState) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return errors.New("DANE: the server sent no certificate")
	}
	for _, r := range p.records {
		if r.Usage == usageDANEEE && matches(r, certs[0]) {
			return nil
		}
	}
	for _, r := range p.records {
		if r.Usage != usageDANETA {
			continue
		}
		for i, ta := range certs {
			if !matches(r, ta) {
				continue
			}
			roots := x509.NewCertPool()
			roots.AddCert(ta)
			inter := x509.NewCertPool()
			for _, c := range certs[1:i] {
				inter.AddCert(c)
			}
			if i == 0 {
				// The trust anchor is the leaf itself: only its name.
				if err := certs[0].VerifyHostname(p.host); err == nil {
					return nil
				}
				continue
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: p.host, Roots: roots, Intermediates: inter}); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("DANE: the certificate of %s matches none of its TLSA records", p.host)
}

// matches reports whether cert matches the record's selector (0 the
// whole certificate, 1 its public key) and matching type (0 exact, 1
// SHA-256, 2 SHA-512), RFC 6698 §2.1.
func matches(r TLSA, cert *x509.Certificate) bool {
	data := cert.Raw
	if r.Selector == 1 {
		data = cert.RawSubjectPublicKeyInfo
	}
	switch r.MatchingType {
	case 1:
		sum := sha256.Sum256(data)
		data = sum[:]
	case 2:
		sum := sha512.Sum512(data)
		data = sum[:]
	}
	return bytes.Equal(data, r.Data)
}
