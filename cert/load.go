package cert

import (
	"crypto/tls"
	"fmt"
)

// Server returns the TLS configuration of a listener: the certificate and
// key in the PEM files certFile and keyFile, or, when both are empty, nil
// (no TLS) unless selfSignedFor names a host: then an ephemeral
// self-signed certificate for it. TLS 1.2 is the least version offered.
func Server(certFile, keyFile, selfSignedFor string) (*tls.Config, error) {
	var c tls.Certificate
	var err error
	switch {
	case certFile != "" || keyFile != "":
		if c, err = tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
	case selfSignedFor != "":
		if c, err = SelfSigned(selfSignedFor); err != nil {
			return nil, fmt.Errorf("self-signed certificate: %w", err)
		}
	default:
		return nil, nil
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, nil
}
