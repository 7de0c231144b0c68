package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/dnstest"
	"github.com/homing-mail/homing/testkit/pebble"
	"github.com/homing-mail/homing/testkit/wait"
)

// The ACME tests (issue #11 item 4) run real `homing serve` processes
// against Debian's pebble on loopback. pebble validates HTTP-01 for real
// (PEBBLE_VA_ALWAYS_VALID=0): it asks the test's DNS server for the
// name and connects to the node's --acme-http listener.

const acmeName = "mx.acme.test"

// acmePort is a TCP port free now on every one of addrs (pebble's
// httpPort is one port for all names; two frontends listen on it at two
// loopback addresses).
func acmePort(t *testing.T, addrs ...string) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", addrs[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		free := true
		var held []net.Listener
		for _, a := range addrs[1:] {
			l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", a, port))
			if err != nil {
				free = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		ln.Close()
		if free {
			return port
		}
	}
	t.Fatalf("no port free on all of %v", addrs)
	return 0
}

// acmeArgs are the flags of a node that obtains its certificate from pb.
func acmeArgs(pb *pebble.Server, dns *dnstest.Server, challenge string) []string {
	return []string{"--hostname", acmeName, "--acme-directory", pb.Directory, "--acme-ca-roots", pb.CAFile,
		"--acme-email", "postmaster@acme.test", "--acme-http", challenge, "--acme-retry", "200ms", "--dns", dns.Addr()}
}

// verified dials addr, STARTTLS with verification against pebble's root
// for the node's name, and returns the leaf; an error while it is not
// (yet) such a certificate.
func verifiedSTARTTLS(addr string, roots *x509.CertPool) (*x509.Certificate, error) {
	c, err := gosmtp.DialStartTLS(addr, &tls.Config{RootCAs: roots, ServerName: acmeName})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Noop(); err != nil { // the handshake is done by then
		return nil, err
	}
	st, _ := c.TLSConnectionState()
	if len(st.PeerCertificates) == 0 {
		return nil, fmt.Errorf("no TLS")
	}
	return st.PeerCertificates[0], nil
}

// waitVerified waits until addr serves a certificate for the name that
// verifies against roots and is not one of not.
func waitVerified(t *testing.T, addr string, roots *x509.CertPool, timeout time.Duration, not ...*x509.Certificate) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	var last error
	wait.For(t, timeout, func() bool {
		leaf, last = verifiedSTARTTLS(addr, roots)
		if last != nil {
			return false
		}
		for _, n := range not {
			if leaf.Equal(n) {
				last = fmt.Errorf("still the certificate with serial %x", n.SerialNumber)
				return false
			}
		}
		return true
	}, "%s serves no (new) certificate from pebble for %s: %v", addr, acmeName, &last)
	return leaf
}

// startTLSLine speaks a line protocol's STARTTLS (IMAP's or POP3's) and
// returns the leaf verified against roots.
func startTLSLine(t *testing.T, addr, command, okPrefix string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil { // greeting
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "%s\r\n", command)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, okPrefix) {
		t.Fatalf("%s on %s: %q %v", command, addr, line, err)
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: roots, ServerName: acmeName})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS after %s on %s: %v", command, addr, err)
	}
	return tc.ConnectionState().PeerCertificates[0]
}

// TestACMEObtainsACertificate: a real homing serve gets a certificate
// for its name from pebble (validated through its HTTP-01 listener);
// SMTP STARTTLS, IMAP STARTTLS and POP3 STLS serve it, verified against
// pebble's root; after a restart with the CA down the stored certificate
// serves from the first handshake.
func TestACMEObtainsACertificate(t *testing.T) {
	dns := dnstest.Start(t, dnstest.Zone{acmeName: {"A 127.0.0.1"}})
	port := acmePort(t, "127.0.0.1")
	pb := pebble.Start(t, pebble.Options{HTTPPort: port, DNS: dns.Addr()})
	p := testkit.StartProcess(t, homingBin, "n1", acmeArgs(pb, dns, fmt.Sprintf("127.0.0.1:%d", port))...)
	leaf := waitVerified(t, p.SMTP, pb.Roots, 60*time.Second)
	if err := leaf.VerifyHostname(acmeName); err != nil || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Fatalf("served %v from %q: %v", leaf.DNSNames, leaf.Issuer.CommonName, err)
	}
	if got := startTLSLine(t, p.IMAP, "a STARTTLS", "a OK", pb.Roots); !got.Equal(leaf) {
		t.Error("IMAP STARTTLS serves another certificate")
	}
	if got := startTLSLine(t, p.POP3, "STLS", "+OK", pb.Roots); !got.Equal(leaf) {
		t.Error("POP3 STLS serves another certificate")
	}
	if !strings.Contains(p.Log(), "ACME certificate obtained") {
		t.Errorf("no log line about the certificate:\n%s", p.Log())
	}
	_, samples := scrape(t, p.Admin)
	for _, want := range []string{`homing_acme_attempts_total{result="ok"} 1`,
		fmt.Sprintf("homing_tls_certificate_expiry_timestamp_seconds %g", float64(leaf.NotAfter.Unix()))} {
		if !slices.Contains(samples, want) {
			t.Errorf("no %s in /metrics", want)
		}
	}

	// The CA goes away; the node restarts and serves what it stored.
	p.Kill()
	pb.Stop()
	p.Start()
	got, err := verifiedSTARTTLS(p.SMTP, pb.Roots)
	if err != nil || !got.Equal(leaf) {
		t.Fatalf("after a restart without the CA: %v (the same certificate: %v)", err, err == nil && got.Equal(leaf))
	}
	wait.For(t, 10*time.Second, func() bool { return strings.Contains(p.Log(), "the CA does not answer now") },
		"no log line saying the CA is down (temporary)")
}

// TestACMETwoFrontendsServeOneCertificate: two frontends with the same
// names; the name resolves to the second one's challenge listener only,
// so the certificate the first one orders is validated through the
// second (it took the challenge over the cluster channel); both then
// serve the same certificate.
func TestACMETwoFrontendsServeOneCertificate(t *testing.T) {
	dns := dnstest.Start(t, dnstest.Zone{acmeName: {"A 127.0.0.2"}})
	port := acmePort(t, "127.0.0.1", "127.0.0.2")
	pb := pebble.Start(t, pebble.Options{HTTPPort: port, DNS: dns.Addr()})
	c := testkit.NewCluster(t, testkit.ClusterOptions{Runner: testkit.Processes, Binary: homingBin})
	c.Add("fe1", mail.RoleFrontend, acmeArgs(pb, dns, fmt.Sprintf("127.0.0.1:%d", port))...)
	c.Add("fe2", mail.RoleFrontend, acmeArgs(pb, dns, fmt.Sprintf("127.0.0.2:%d", port))...)
	leaf1 := waitVerified(t, c.SMTPAddr("fe1"), pb.Roots, 90*time.Second)
	leaf2 := waitVerified(t, c.SMTPAddr("fe2"), pb.Roots, 30*time.Second)
	if !leaf1.Equal(leaf2) {
		t.Fatalf("the frontends serve two certificates: serials %x and %x", leaf1.SerialNumber, leaf2.SerialNumber)
	}
	fe1, fe2 := c.Process("fe1").Log(), c.Process("fe2").Log()
	if !strings.Contains(fe1, "ACME certificate obtained") || strings.Contains(fe2, "ACME certificate obtained") {
		t.Errorf("fe1 should have obtained it and fe2 not:\nfe1:\n%s\nfe2:\n%s", fe1, fe2)
	}
	if !strings.Contains(fe2, "answering an ACME challenge for a member") || !strings.Contains(fe2, "ACME certificate learnt from a member") {
		t.Errorf("fe2 did not answer fe1's challenge or learn its certificate:\n%s", fe2)
	}
}

// TestACMERenewalSwapsTheCertificateWithoutDroppingASession: pebble
// issues 15-second certificates, so renewal (a third of the lifetime
// left) comes 10 s after each issue; the new certificate is served to
// new handshakes, and a session opened under the old one goes on and
// delivers.
func TestACMERenewalSwapsTheCertificateWithoutDroppingASession(t *testing.T) {
	dns := dnstest.Start(t, dnstest.Zone{acmeName: {"A 127.0.0.1"}})
	port := acmePort(t, "127.0.0.1")
	pb := pebble.Start(t, pebble.Options{HTTPPort: port, DNS: dns.Addr(), Validity: 15 * time.Second})
	p := testkit.StartProcess(t, homingBin, "n1", acmeArgs(pb, dns, fmt.Sprintf("127.0.0.1:%d", port))...)
	waitVerified(t, p.SMTP, pb.Roots, 60*time.Second)
	if _, err := adminClient(p.Admin).CreateAccount(t.Context(), adminAccount("alice@example.test", "relay-tls-pw-123")); err != nil {
		t.Fatal(err)
	}
	old, err := gosmtp.DialStartTLS(p.SMTP, &tls.Config{RootCAs: pb.Roots, ServerName: acmeName})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Noop(); err != nil {
		t.Fatal(err)
	}
	st, _ := old.TLSConnectionState()
	first := st.PeerCertificates[0] // the session's, whichever renewal it is
	if life := first.NotAfter.Sub(first.NotBefore); life > time.Minute {
		t.Fatalf("pebble issued a certificate for %v, want 15 s", life)
	}
	if err := old.Mail("x@remote.test", nil); err != nil {
		t.Fatal(err)
	}

	second := waitVerified(t, p.SMTP, pb.Roots, 40*time.Second, first)
	if !second.NotBefore.After(first.NotBefore) && !second.NotBefore.Equal(first.NotBefore) {
		t.Fatalf("the renewed certificate is older: %v, %v", second.NotBefore, first.NotBefore)
	}
	if err := old.Rcpt("alice@example.test", nil); err != nil {
		t.Fatalf("the session opened before the renewal was dropped: %v", err)
	}
	w, err := old.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(testkit.Message("x@remote.test", "alice@example.test", "across", "the renewal"))
	if err := w.Close(); err != nil {
		t.Fatalf("DATA across the renewal: %v", err)
	}
	if st, _ := old.TLSConnectionState(); !st.PeerCertificates[0].Equal(first) {
		t.Fatal("the old session's certificate changed")
	}
	waitMessages(t, adminClient(p.Admin), "alice@example.test", 1)
}

// TestACMEBadDirectoryIsAClearStartupError: a directory URL that is not
// https, one that answers 404, one whose certificate is not trusted, one
// whose host does not exist (in the test's zone) and a wildcard name
// each stop the start with an error that says so.
func TestACMEBadDirectoryIsAClearStartupError(t *testing.T) {
	dns := dnstest.Start(t, dnstest.Zone{acmeName: {"A 127.0.0.1"}})
	pb := pebble.Start(t, pebble.Options{HTTPPort: acmePort(t, "127.0.0.1"), DNS: dns.Addr()})
	notFound := strings.TrimSuffix(pb.Directory, "/dir") + "/no-such-directory"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--acme-directory", "http://127.0.0.1:1/dir"}, "want an https:// URL"},
		{[]string{"--acme-directory", notFound, "--acme-ca-roots", pb.CAFile}, "is not an ACME directory: the server answered 404"},
		{[]string{"--acme-directory", pb.Directory}, "the CA's HTTPS certificate is not trusted"},
		{[]string{"--acme-directory", "https://ca.nowhere.test/dir"}, "its host does not exist"},
		{[]string{"--acme-directory", pb.Directory, "--acme-ca-roots", pb.CAFile, "--acme-names", "*.acme.test"}, "no IP address or wildcard"},
	} {
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		args := append([]string{"serve", "--name", "bad", "--data", dir, "--smtp", "127.0.0.1:0", "--admin", "127.0.0.1:0",
			"--pop3", "", "--hostname", acmeName, "--acme-http", "127.0.0.1:0", "--dns", dns.Addr()}, c.args...)
		cmd := exec.CommandContext(ctx, homingBin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err == nil || !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: exit %v, want a failed start saying %q:\n%s", c.args, err, c.want, out.String())
		}
		if strings.Contains(out.String(), "(temporary)") {
			t.Errorf("%v: a permanent misconfiguration called temporary:\n%s", c.args, out.String())
		}
	}
}
