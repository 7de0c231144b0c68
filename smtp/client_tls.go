package smtp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/mtasts"
)

// RouteTLS is the TLS a route asks for (--route DOMAIN=HOST:PORT,tls=...).
type RouteTLS string

const (
	// RouteTLSMay: STARTTLS when offered, unverified (RFC 7435); the
	// default of a route without credentials.
	RouteTLSMay RouteTLS = "may"
	// RouteTLSEncrypt: TLS or nothing, the certificate not verified
	// (Postfix's "encrypt": a relay with a self-signed certificate).
	RouteTLSEncrypt RouteTLS = "encrypt"
	// RouteTLSRequire: TLS or nothing, the certificate verified against
	// the trust roots for the route's host name (Postfix's "secure");
	// the default of a route with credentials.
	RouteTLSRequire RouteTLS = "require"
)

// ParseRouteTLS checks a route's tls= value.
func ParseRouteTLS(s string) (RouteTLS, error) {
	switch RouteTLS(strings.ToLower(s)) {
	case RouteTLSMay:
		return RouteTLSMay, nil
	case RouteTLSEncrypt:
		return RouteTLSEncrypt, nil
	case RouteTLSRequire:
		return RouteTLSRequire, nil
	}
	return "", fmt.Errorf("tls=%s: want may, encrypt or require", s)
}

// STSResolver finds the MTA-STS policy of a domain (*mtasts.Source).
type STSResolver interface {
	Get(ctx context.Context, domain string) mtasts.Lookup
}

// stsApplied is the MTA-STS policy of the domain of one Send.
type stsApplied struct {
	domain string
	id     string
	policy *mtasts.Policy
}

func (s *stsApplied) enforce() bool { return s.policy.Mode == mtasts.ModeEnforce }

// String names the policy in results and logs.
func (s *stsApplied) String() string {
	return fmt.Sprintf("the MTA-STS policy of %s (mode %s, id %s)", s.domain, s.policy.Mode, s.id)
}

// tlsPolicy is what the TLS of a connection to one host must be.
type tlsPolicy struct {
	label string // the policy label of homing_outbound_tls_total
	desc  string // what it is, in the journey ("" = label)
	// required: no STARTTLS, a refused one or a failed handshake fail
	// the host; nothing goes in plaintext.
	required bool
	// why names what requires it, for the failure text.
	why string
	// config is the handshake's configuration; verified says whether
	// it checks the certificate.
	config   *tls.Config
	verified bool
	// report, for a policy in mode testing: the certificate is checked
	// after an unverified handshake and a failure only reported.
	report *stsApplied
	roots  *x509.CertPool
	// fallback: a failed opportunistic handshake is retried in
	// plaintext on a new connection.
	fallback bool
	// plain: this is that retry.
	plain bool
}

// hostTLS decides the TLS of a connection to h: DANE when h has
// validated TLSA records (RFC 8461 §2: DANE takes precedence over
// MTA-STS), the client's own requirement (cluster traffic), the route's
// level, an MTA-STS policy of the domain (enforce: only an MX host the
// policy lists, over verified TLS; testing: as without, with failures
// reported), or opportunistic TLS. A host an enforced policy does not
// list is a temporary 4.7.5 failure, not tried.
func (c *Client) hostTLS(h host, dane *danePolicy, sts *stsApplied) (tlsPolicy, *mail.Result) {
	switch {
	case dane != nil:
		return tlsPolicy{label: TLSPolicyDANE, desc: "DANE, by its TLSA records", required: true, why: "its TLSA records (DANE) require TLS",
			config: dane.tlsConfig(), verified: true}, nil
	case c.cfg.RequireTLS:
		return tlsPolicy{label: TLSPolicyRequired, required: true, why: "TLS is required", config: c.tlsConfig(h.name), verified: c.cfg.TLS != nil}, nil
	case c.cfg.TLS != nil:
		return tlsPolicy{label: TLSPolicyConfigured, config: c.tlsConfig(h.name), verified: true}, nil
	}
	switch c.routeTLS(h) {
	case RouteTLSRequire:
		return tlsPolicy{label: TLSPolicyRoute, required: true, desc: "the route of " + h.route + ", tls=require",
			why:    fmt.Sprintf("the route of %s requires verified TLS (tls=require)", h.route),
			config: c.verifyingConfig(h.name), verified: true}, nil
	case RouteTLSEncrypt:
		return tlsPolicy{label: TLSPolicyRoute, required: true, desc: "the route of " + h.route + ", tls=encrypt",
			why:    fmt.Sprintf("the route of %s requires TLS (tls=encrypt)", h.route),
			config: c.tlsConfig(h.name)}, nil
	}
	if sts != nil && h.mx {
		if !sts.policy.Match(h.name) {
			if sts.enforce() {
				r := mail.Temp(mail.StatusTLSFailed, fmt.Sprintf("MTA-STS: %s is not an MX host that %s allows (mx %s); not used",
					h.name, sts, strings.Join(sts.policy.MX, " ")))
				return tlsPolicy{label: TLSPolicyMTASTS}, &r
			}
			c.log.Warn("MTA-STS testing: the MX host is not in the policy; delivering as without it",
				"domain", sts.domain, "mx", h.name, "policy", strings.Join(sts.policy.MX, " "), "id", sts.id)
		}
		if sts.enforce() {
			return tlsPolicy{label: TLSPolicyMTASTS, desc: sts.String(), required: true, why: sts.String() + " requires verified TLS",
				config: c.verifyingConfig(h.name), verified: true}, nil
		}
		return tlsPolicy{label: TLSPolicyMTASTSTesting, config: c.tlsConfig(h.name), report: sts, roots: c.cfg.RootCAs, fallback: true}, nil
	}
	return tlsPolicy{label: TLSPolicyOpportunistic, config: c.tlsConfig(h.name), fallback: true}, nil
}

// routeTLS is the TLS level of h's route: its tls= option, or require
// when the route has credentials (they never go in plaintext, nor to a
// host whose certificate is not checked, unless tls=encrypt says so).
func (c *Client) routeTLS(h host) RouteTLS {
	if h.route == "" {
		return ""
	}
	if lvl, ok := c.cfg.RouteTLS[h.route]; ok && lvl != "" {
		return lvl
	}
	if _, ok := c.credential(h); ok {
		return RouteTLSRequire
	}
	return RouteTLSMay
}

// describe is what the journey says the policy is.
func (p tlsPolicy) describe() string {
	if p.desc != "" {
		return p.desc
	}
	return p.label
}

// verifyingConfig verifies the server's certificate against the trust
// roots (RootCAs, or the system's) for name (RFC 8461 §4.2, RFC 6125).
func (c *Client) verifyingConfig(name string) *tls.Config {
	return &tls.Config{ServerName: name, RootCAs: c.cfg.RootCAs, MinVersion: tls.VersionTLS12}
}

// verifyPKIX checks the chain of cs against roots (nil: the system's) for
// name, as a verifying handshake would have.
func verifyPKIX(cs tls.ConnectionState, roots *x509.CertPool, name string) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return errors.New("the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
	return err
}

// tlsVersion names the version of a connection state.
func tlsVersion(cs tls.ConnectionState) string {
	return strings.Replace(tls.VersionName(cs.Version), "TLS ", "TLS", 1)
}
