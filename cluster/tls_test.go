package cluster

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func mustCA(t *testing.T, secret, name string) *clusterCA {
	t.Helper()
	ca, err := deriveCA(secret, name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustLeaf(t *testing.T, ca *clusterCA) tls.Certificate {
	t.Helper()
	leaf, err := ca.issueLeaf("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func TestDeriveCAIsDeterministic(t *testing.T) {
	a1 := mustCA(t, testSecretA, "prod")
	a2 := mustCA(t, testSecretA, "prod")
	if !bytes.Equal(a1.cert.Raw, a2.cert.Raw) {
		t.Fatal("two derivations from one secret built different CA certificates")
	}
	if !a1.key.Equal(a2.key) {
		t.Fatal("two derivations from one secret gave different CA keys")
	}
	if !a1.cert.IsCA || a1.cert.SerialNumber.Int64() != 1 ||
		!a1.cert.NotBefore.Equal(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		!a1.cert.NotAfter.Equal(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("CA certificate fields: IsCA %v serial %v validity %v..%v",
			a1.cert.IsCA, a1.cert.SerialNumber, a1.cert.NotBefore, a1.cert.NotAfter)
	}
	if err := a1.cert.CheckSignatureFrom(a1.cert); err != nil {
		t.Fatalf("CA certificate is not self-signed by the derived key: %v", err)
	}
	if pub := a1.cert.PublicKey.(ed25519.PublicKey); !pub.Equal(a1.key.Public()) {
		t.Fatal("CA certificate does not hold the derived key")
	}
	for _, other := range []*clusterCA{mustCA(t, testSecretB, "prod"), mustCA(t, testSecretA, "staging")} {
		if other.key.Equal(a1.key) || bytes.Equal(other.cert.Raw, a1.cert.Raw) {
			t.Fatal("another secret or cluster name derived the same CA")
		}
	}
	if _, err := deriveCA("", "prod"); err == nil {
		t.Fatal("deriveCA accepted an empty secret")
	}
}

func TestLeafVerifiesOnlyAgainstItsCA(t *testing.T) {
	ca, other := mustCA(t, testSecretA, ""), mustCA(t, testSecretB, "")
	leaf := mustLeaf(t, ca)
	if leaf2 := mustLeaf(t, ca); leaf2.Leaf.SerialNumber.Cmp(leaf.Leaf.SerialNumber) == 0 ||
		leaf2.Leaf.PublicKey.(ed25519.PublicKey).Equal(leaf.Leaf.PublicKey) {
		t.Fatal("two leaves share a serial or a key")
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		opts := x509.VerifyOptions{Roots: ca.pool, DNSName: clusterServerName, KeyUsages: []x509.ExtKeyUsage{usage}}
		if _, err := leaf.Leaf.Verify(opts); err != nil {
			t.Errorf("leaf does not verify against its CA for usage %v: %v", usage, err)
		}
		opts.Roots = other.pool
		var unknown x509.UnknownAuthorityError
		if _, err := leaf.Leaf.Verify(opts); !errors.As(err, &unknown) {
			t.Errorf("leaf against another CA for usage %v: %v, want unknown authority", usage, err)
		}
	}
	// The leaf is valid already for a peer whose clock is behind.
	if !leaf.Leaf.NotBefore.Before(time.Now().Add(-time.Hour)) {
		t.Errorf("leaf NotBefore %v is not backdated", leaf.Leaf.NotBefore)
	}
}

// handshake runs a TLS handshake between server and client configs over
// loopback TCP and returns the two sides' errors. After the handshake the
// client sends a byte and the server echoes it, so that a client
// certificate refused by the server (which TLS 1.3 reports only after the
// client's handshake has completed) reaches the client too.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(conn, server)
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(tc, b); err != nil {
			done <- err
			return
		}
		_, err = tc.Write(b)
		done <- err
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(conn, client)
	clientErr = tc.Handshake()
	if clientErr == nil {
		if _, err := tc.Write([]byte{'x'}); err != nil {
			clientErr = err
		} else if _, err := io.ReadFull(tc, make([]byte, 1)); err != nil {
			clientErr = err
		}
	}
	return <-done, clientErr
}

func TestTLSConfigsMutualAuthentication(t *testing.T) {
	ca, other := mustCA(t, testSecretA, ""), mustCA(t, testSecretB, "")
	srv := ca.serverTLS(mustLeaf(t, ca))

	t.Run("same secret", func(t *testing.T) {
		serr, cerr := handshake(t, srv, ca.clientTLS(mustLeaf(t, ca)))
		if serr != nil || cerr != nil {
			t.Fatalf("server %v, client %v", serr, cerr)
		}
	})
	t.Run("client of another secret", func(t *testing.T) {
		// It trusts our CA (so the server's side is what refuses).
		cfg := other.clientTLS(mustLeaf(t, other))
		cfg.RootCAs = ca.pool
		serr, cerr := handshake(t, srv, cfg)
		if serr == nil || cerr == nil {
			t.Fatalf("server %v, client %v; want both to fail", serr, cerr)
		}
		if !strings.Contains(serr.Error(), "certificate signed by unknown authority") {
			t.Errorf("server error %v", serr)
		}
	})
	t.Run("client without certificate", func(t *testing.T) {
		cfg := ca.clientTLS(tls.Certificate{})
		cfg.Certificates = nil
		serr, cerr := handshake(t, srv, cfg)
		if serr == nil || cerr == nil {
			t.Fatalf("server %v, client %v; want both to fail", serr, cerr)
		}
		if !strings.Contains(serr.Error(), "client didn't provide a certificate") {
			t.Errorf("server error %v", serr)
		}
	})
	t.Run("server of another secret", func(t *testing.T) {
		osrv := other.serverTLS(mustLeaf(t, other))
		osrv.ClientCAs = ca.pool // it would accept us; our client must refuse it
		serr, cerr := handshake(t, osrv, ca.clientTLS(mustLeaf(t, ca)))
		var unknown x509.UnknownAuthorityError
		if !errors.As(cerr, &unknown) {
			t.Fatalf("client error %v, want unknown authority", cerr)
		}
		if serr == nil {
			t.Fatal("server side saw no failure")
		}
	})
	t.Run("TLS 1.2 client", func(t *testing.T) {
		cfg := ca.clientTLS(mustLeaf(t, ca))
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		serr, cerr := handshake(t, srv, cfg)
		if serr == nil || cerr == nil {
			t.Fatalf("server %v, client %v; want both to fail", serr, cerr)
		}
		if !strings.Contains(serr.Error(), "unsupported versions") {
			t.Errorf("server error %v", serr)
		}
	})
}

// TestChannelTLSAtTheWire dials a channel child with plain crypto/tls.
func TestChannelTLSAtTheWire(t *testing.T) {
	a := startChannelChild(t, "a", withSecret(testSecretA))
	ca, other := mustCA(t, testSecretA, ""), mustCA(t, testSecretB, "")

	// dial handshakes with a, writes the HTTP/2 client preface and reads
	// the first bytes of a's answer; nil means a spoke HTTP/2 to us.
	dial := func(cfg *tls.Config) error {
		conn, err := net.DialTimeout("tcp", a.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return err
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Errorf("ALPN %q, want h2", p)
		}
		if _, err := tc.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
			return err
		}
		_, err = io.ReadFull(tc, make([]byte, 9)) // a frame header
		return err
	}
	h2 := func(cfg *tls.Config) *tls.Config {
		cfg.NextProtos = []string{"h2"}
		return cfg
	}

	// The control: a client with the secret's CA and a leaf of it.
	if err := dial(h2(ca.clientTLS(mustLeaf(t, ca)))); err != nil {
		t.Fatalf("client with the cluster's certificate: %v", err)
	}
	t.Run("no client certificate", func(t *testing.T) {
		cfg := h2(ca.clientTLS(tls.Certificate{}))
		cfg.Certificates = nil
		err := dial(cfg)
		if err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("got %v, want the server's certificate required alert", err)
		}
	})
	t.Run("client certificate of another secret", func(t *testing.T) {
		cfg := h2(other.clientTLS(mustLeaf(t, other)))
		cfg.RootCAs = ca.pool
		err := dial(cfg)
		if err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
			t.Fatalf("got %v, want the server's unknown CA alert", err)
		}
	})
	t.Run("no certificate and no verification", func(t *testing.T) {
		// What a scanner would do: skip verifying the server, send nothing.
		err := dial(&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
		if err == nil {
			t.Fatal("a client without a certificate got HTTP/2 from the channel")
		}
	})
	t.Run("server verified against another secret", func(t *testing.T) {
		var unknown x509.UnknownAuthorityError
		if err := dial(h2(other.clientTLS(mustLeaf(t, other)))); !errors.As(err, &unknown) {
			t.Fatalf("got %v, want the channel's certificate refused as unknown authority", err)
		}
	})
	t.Run("TLS 1.2", func(t *testing.T) {
		cfg := h2(ca.clientTLS(mustLeaf(t, ca)))
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		if err := dial(cfg); err == nil || !strings.Contains(err.Error(), "protocol version") {
			t.Fatalf("got %v, want a protocol version alert", err)
		}
	})
	if n := a.count(); n != 0 {
		t.Fatalf("a's resolver received %d messages", n)
	}
}
