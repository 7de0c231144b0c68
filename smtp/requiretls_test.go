package smtp

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/fakemx"
)

// TestClientRequireTLSNeverPlaintext: with RequireTLS, a server without
// STARTTLS gets nothing (a temporary 4.7.5 for the host), and one with
// STARTTLS and a trusted certificate gets the message over TLS.
func TestClientRequireTLSNeverPlaintext(t *testing.T) {
	plain := fakemx.Start(t)
	cl := NewClient(ClientConfig{Routes: map[string]string{"remote.test": plain.Addr}, TLS: &tls.Config{ServerName: "remote.test"}, RequireTLS: true})
	out := cl.Send(sendCtx(t), msgOf(&mail.Envelope{}, rcptsOf("a@remote.test"), testBody))
	if !out[0].Temporary() || out[0].Status != mail.StatusTLSFailed {
		t.Fatalf("no STARTTLS: %+v, want temporary 4.7.5", out[0])
	}
	if len(plain.Transactions()) != 0 {
		t.Fatal("a message went in plaintext with RequireTLS")
	}

	srvTLS := selfSignedTLS(t, "remote.test")
	secure := fakemx.Start(t, func(s *gosmtp.Server) { s.TLSConfig = srvTLS })
	leaf, err := x509.ParseCertificate(srvTLS.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf) // self-signed: its own root
	cl = NewClient(ClientConfig{Routes: map[string]string{"remote.test": secure.Addr},
		TLS: &tls.Config{ServerName: "remote.test", RootCAs: pool}, RequireTLS: true})
	out = cl.Send(sendCtx(t), msgOf(&mail.Envelope{}, rcptsOf("a@remote.test"), testBody))
	if !out[0].OK() || !secure.Transactions()[0].TLS {
		t.Fatalf("verified TLS: %+v", out[0])
	}
}
