package cluster

import (
	"crypto/tls"
	"net"
	"testing"
)

// smtpHandshake runs a TLS handshake between client and server configs over a
// pipe and returns the client's error.
func smtpHandshake(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() { done <- tls.Server(a, server).Handshake() }()
	err := tls.Client(b, client).Handshake()
	if err != nil {
		b.Close()
	}
	<-done
	return err
}

// TestSMTPTLSVerifiesTheClusterCA: two members of one cluster shake hands
// (both ends verified); a client of another secret or cluster name does
// not, nor one that trusts the system's roots.
func TestSMTPTLSVerifiesTheClusterCA(t *testing.T) {
	secret := "a-cluster-secret-of-32-bytes-xyz"
	srv, _, err := SMTPTLS(secret, "homing", "fe1")
	if err != nil {
		t.Fatal(err)
	}
	_, cli, err := SMTPTLS(secret, "homing", "be1")
	if err != nil {
		t.Fatal(err)
	}
	if err := smtpHandshake(t, srv, cli); err != nil {
		t.Fatalf("members of one cluster: %v", err)
	}
	_, other, _ := SMTPTLS("another-secret-of-32-bytes-abcde", "homing", "x")
	if err := smtpHandshake(t, srv, other); err == nil {
		t.Fatal("a client of another secret verified the server")
	}
	_, otherName, _ := SMTPTLS(secret, "other", "x")
	if err := smtpHandshake(t, srv, otherName); err == nil {
		t.Fatal("a client of another cluster name verified the server")
	}
	public := &tls.Config{ServerName: SMTPServerName}
	if err := smtpHandshake(t, srv, public); err == nil {
		t.Fatal("a client trusting the system roots verified the cluster certificate")
	}
}
