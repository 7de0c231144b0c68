package node_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cert"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/wait"
)

// insecure accepts any certificate: the tests look at which one came.
var insecure = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // tests inspect the certificate

// TestMXOffersSTARTTLSWithNoConfiguration: a node without --tls-cert
// offers STARTTLS on the MX port with a self-signed certificate for its
// host name, and says so loudly at start.
func TestMXOffersSTARTTLSWithNoConfiguration(t *testing.T) {
	var log lockedBuffer
	n := testkit.StartNode(t, "n1", testkit.WithConfig(func(c *node.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	}))
	createAccount(t, client(n), "alice@example.test", "trust-test-pw-123", 0)
	c, err := gosmtp.Dial(n.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("the MX port does not offer STARTTLS without configuration")
	}
	c.Close()
	if c, err = gosmtp.DialStartTLS(n.SMTPAddr(), insecure); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
	st, _ := c.TLSConnectionState()
	if len(st.PeerCertificates) == 0 || st.PeerCertificates[0].VerifyHostname("n1.example.test") != nil {
		t.Fatalf("the certificate is not for the node's host name: %+v", st.PeerCertificates)
	}
	msg := testkit.Message("x@remote.test", "alice@example.test", "over tls", "hi")
	if err := c.SendMail("x@remote.test", []string{"alice@example.test"}, bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	ms := waitMessages(t, client(n), "alice@example.test", 1)
	raw, _ := client(n).RawMessage(t.Context(), "alice@example.test", ms[0].ID)
	if !strings.Contains(header(raw), "with ESMTPS") {
		t.Fatalf("the Received field does not say ESMTPS:\n%s", raw)
	}
	if !strings.Contains(log.String(), "NO TLS CERTIFICATE CONFIGURED") {
		t.Fatalf("no loud log line about the self-signed certificate:\n%s", log.String())
	}
}

// TestSubmissionsIsImplicitTLS: --submissions speaks TLS from the first
// byte (RFC 8314 §3.3); AUTH then relays, and the Received field says
// ESMTPSA.
func TestSubmissionsIsImplicitTLS(t *testing.T) {
	mx := fakemx.Start(t)
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr), testkit.WithConfig(func(c *node.Config) {
		c.Listen.Submissions = "127.0.0.1:0"
	}))
	createAccount(t, client(n), "alice@example.test", "trust-test-pw-123", 0)
	c, err := gosmtp.DialTLS(n.SubmissionsAddr(), insecure)
	if err != nil {
		t.Fatalf("TLS to --submissions: %v", err)
	}
	defer c.Close()
	if err := c.Hello("mua.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered inside implicit TLS")
	}
	if err := c.Mail("alice@example.test", nil); err == nil {
		t.Fatal("MAIL without AUTH was accepted on submissions")
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.test", "trust-test-pw-123")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	msg := testkit.Message("alice@example.test", "bob@remote.test", "465", "implicit")
	if err := c.SendMail("alice@example.test", []string{"bob@remote.test"}, bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	got := mx.WaitMessages(t, 1, 20*time.Second)[0]
	if !strings.Contains(header(got.Data), "with ESMTPSA") {
		t.Fatalf("the Received field does not say ESMTPSA:\n%s", got.Data)
	}
	// Plaintext SMTP to the port is not served.
	pc, err := gosmtp.Dial(n.SubmissionsAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.CommandTimeout = 2 * time.Second
	if err := pc.Hello("plain.test"); err == nil {
		t.Fatal("plaintext SMTP was answered on the implicit-TLS port")
	}
}

// writeCert writes a self-signed certificate for host as PEM files.
func writeCert(t *testing.T, certFile, keyFile, host string) []byte {
	t.Helper()
	c, err := cert.SelfSigned(host)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	// Written beside and renamed, as a renewal tool does.
	for _, f := range []struct {
		name string
		data []byte
	}{
		{certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})},
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: key})},
	} {
		if err := os.WriteFile(f.name+".new", f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f.name+".new", f.name); err != nil {
			t.Fatal(err)
		}
	}
	return c.Certificate[0]
}

// servedCert is the certificate the SMTP port presents after STARTTLS.
func servedCert(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := gosmtp.DialStartTLS(addr, insecure)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
	st, _ := c.TLSConnectionState()
	return st.PeerCertificates[0].Raw
}

// TestTLSCertificateReloadedOnSIGHUP: a real homing serve with
// --tls-cert/--tls-key serves the new files after SIGHUP, and a session
// that started before it goes on and delivers.
func TestTLSCertificateReloadedOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certFile, keyFile, "mx.example.test")
	p := testkit.StartProcess(t, homingBin, "n1", "--tls-cert", certFile, "--tls-key", keyFile)
	if got := servedCert(t, p.SMTP); !bytes.Equal(got, first) {
		t.Fatal("the node does not serve --tls-cert")
	}
	if _, err := adminClient(p.Admin).CreateAccount(t.Context(), adminAccount("alice@example.test", "trust-test-pw-123")); err != nil {
		t.Fatal(err)
	}

	// A session under the first certificate, open across the reload.
	old, err := gosmtp.DialStartTLS(p.SMTP, insecure)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Mail("x@remote.test", nil); err != nil {
		t.Fatal(err)
	}

	second := writeCert(t, certFile, keyFile, "mx.example.test")
	p.Signal(syscall.SIGHUP)
	wait.For(t, 10*time.Second, func() bool { return bytes.Equal(servedCert(t, p.SMTP), second) },
		"the node does not serve the new certificate after SIGHUP")

	if err := old.Rcpt("alice@example.test", nil); err != nil {
		t.Fatalf("the session opened before the reload was dropped: %v", err)
	}
	w, err := old.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(testkit.Message("x@remote.test", "alice@example.test", "across", "the reload"))
	if err := w.Close(); err != nil {
		t.Fatalf("DATA across the reload: %v", err)
	}
	st, _ := old.TLSConnectionState()
	if !bytes.Equal(st.PeerCertificates[0].Raw, first) {
		t.Fatal("the old session's certificate changed")
	}

	// A broken file: the old certificate stays, the node runs on.
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	p.Signal(syscall.SIGHUP)
	wait.For(t, 10*time.Second, func() bool { return strings.Contains(p.Log(), "reloading the TLS certificate failed") },
		"no log line about the failed reload")
	if !bytes.Equal(servedCert(t, p.SMTP), second) {
		t.Fatal("a failed reload changed the certificate")
	}
}

// lockedBuffer is a log destination the test reads while the node writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func adminClient(addr string) *admin.Client { return admin.NewClient("http://"+addr, "") }

func adminAccount(addr, pw string) admin.CreateAccount {
	return admin.CreateAccount{Address: addr, Password: pw}
}
