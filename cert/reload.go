package cert

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"
)

// Source is the certificate of a node's TLS listeners (SMTP, submission,
// IMAP, POP3): from the PEM files the operator gives (--tls-cert,
// --tls-key), read again by Reload (SIGHUP) so that a renewed certificate
// is served without a restart; or one that Set hands it (ACME, package
// acme); or, until then or without either, a self-signed one made at
// start. Sessions in progress keep the certificate they shook hands
// with; new handshakes get the current one. Safe for concurrent use.
type Source struct {
	certFile, keyFile string
	selfSigned        atomic.Bool
	cur               atomic.Pointer[tls.Certificate]
}

// NewSource loads the certificate and key files, or, when both are
// empty, makes a self-signed certificate for host.
func NewSource(certFile, keyFile, host string) (*Source, error) {
	s := &Source{certFile: certFile, keyFile: keyFile}
	if certFile == "" && keyFile == "" {
		c, err := SelfSigned(host)
		if err != nil {
			return nil, fmt.Errorf("self-signed certificate: %w", err)
		}
		s.selfSigned.Store(true)
		s.cur.Store(&c)
		return s, nil
	}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// SelfSigned reports whether the source serves a certificate it made.
func (s *Source) SelfSigned() bool { return s.selfSigned.Load() }

// Set makes c the certificate of new handshakes (a renewed ACME
// certificate); sessions in progress keep theirs.
func (s *Source) Set(c *tls.Certificate) {
	s.cur.Store(c)
	s.selfSigned.Store(false)
}

// Reload reads the files again; on an error the certificate in use
// stays. A source without files has nothing to read.
func (s *Source) Reload() error {
	if s.certFile == "" && s.keyFile == "" {
		return nil
	}
	c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	s.cur.Store(&c)
	return nil
}

// Certificate is the certificate served now.
func (s *Source) Certificate() *tls.Certificate { return s.cur.Load() }

// NotAfter is the expiry of the certificate served now (zero if it does
// not parse).
func (s *Source) NotAfter() time.Time {
	c := s.cur.Load()
	if c == nil || len(c.Certificate) == 0 {
		return time.Time{}
	}
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return time.Time{}
		}
	}
	return leaf.NotAfter
}

// Config is a server configuration that serves the current certificate
// (TLS 1.2 at least). For a client that names sni (a cluster member),
// it answers with member instead: the cluster's own certificate, which
// members verify against the cluster CA.
func (s *Source) Config(sni string, member *tls.Config) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cur.Load(), nil
		},
	}
	if member != nil && sni != "" {
		cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			if h.ServerName == sni {
				return member, nil
			}
			return nil, nil
		}
	}
	return cfg
}
