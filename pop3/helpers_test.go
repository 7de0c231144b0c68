package pop3

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/testkit/tlog"
	"github.com/homing-mail/homing/testkit/wait"
)

// The account most tests use.
const (
	alice    = "alice@example.test"
	alicePW  = "correct horse"
	ioWindow = 10 * time.Second // a client's read deadline: a hang fails, never blocks the suite
)

// testCert is a self-signed certificate for 127.0.0.1 and localhost.
type testCert struct {
	server  *tls.Config
	client  *tls.Config // trusts the certificate
	pemFile string      // the certificate in PEM, for Python's ssl
}

func newTestCert(t testing.TB) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	file := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCert{
		server:  &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}},
		client:  &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"},
		pemFile: file,
	}
}

// testServer is a Server on loopback over a fakeBackend with alice's
// account.
type testServer struct {
	*Server
	be      *fakeBackend
	addr    string // Serve: STLS when the config has TLS
	tlsAddr string // ServeTLS, when the config has TLS
	done    chan struct{}
}

// fastGuard is a guard.Config with short delays, so that failures cost
// the tests milliseconds.
func fastGuard() guard.Config {
	return guard.Config{FailureDelay: 5 * time.Millisecond, MaxFailureDelay: 20 * time.Millisecond}
}

// startServer starts a server for cfg (Auth defaults to fastGuard) on
// 127.0.0.1:0, and closes it at the end of the test, checking that no
// panic was recovered.
func startServer(t testing.TB, cfg Config, wrap ...func(net.Listener) net.Listener) *testServer {
	t.Helper()
	if cfg.Guard == nil && cfg.Auth.FailureDelay == 0 {
		cfg.Auth = fastGuard()
	}
	be := newFakeBackend()
	be.addAccount(alice, alicePW)
	var log *slog.Logger // a fuzz target's logger must not log: discard
	if _, fuzz := t.(*testing.F); !fuzz {
		log = tlog.New(t, "pop3")
	}
	srv := NewServer(cfg, be, log)
	ts := &testServer{Server: srv, be: be, done: make(chan struct{})}
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wrap {
			l = w(l)
		}
		return l
	}
	l := listen()
	ts.addr = l.Addr().String()
	served := 1
	errs := make(chan error, 2)
	go func() { errs <- srv.Serve(l) }()
	if cfg.TLSConfig != nil {
		lt := listen()
		ts.tlsAddr = lt.Addr().String()
		served++
		go func() { errs <- srv.ServeTLS(lt) }()
	}
	t.Cleanup(func() {
		srv.Close()
		for range served {
			if err := <-errs; err != nil {
				t.Errorf("Serve: %v", err)
			}
		}
		if n := srv.PanicsRecovered(); n != 0 {
			t.Errorf("%d panics recovered", n)
		}
	})
	return ts
}

// client is a POP3 client for tests: raw lines, with a read deadline.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// dial connects to addr and reads the greeting, which must be +OK.
func dial(t testing.TB, addr string) *client {
	t.Helper()
	c := dialRaw(t, addr)
	if g := c.line(); !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

// dialRaw connects without reading anything.
func dialRaw(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// dialMaybe connects to addr, or returns the error.
func dialMaybe(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, ioWindow)
}

// dialTLS connects to an implicit-TLS address and reads the greeting.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) *client {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.line(); !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

// send writes raw bytes.
func (c *client) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioWindow))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("writing %q: %v", s, err)
	}
}

// line reads one response line, without its CRLF, which must be there.
func (c *client) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioWindow))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a line: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends line and returns the one-line response.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.line()
}

// ok sends line and fails unless the response is +OK.
func (c *client) ok(line string) string {
	c.t.Helper()
	r := c.cmd(line)
	if !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("%s: %q, want +OK", line, r)
	}
	return r
}

// rawBody reads the lines of a multi-line response up to the terminator
// and returns them as received (stuffed), CRLFs included, terminator
// excluded.
func (c *client) rawBody() string {
	c.t.Helper()
	var b strings.Builder
	for {
		c.conn.SetReadDeadline(time.Now().Add(ioWindow))
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading a multi-line response: %v (so far %q)", err, b.String())
		}
		if l == ".\r\n" {
			return b.String()
		}
		b.WriteString(l)
	}
}

// multi sends line, expects +OK and returns the multi-line body,
// dot-unstuffed (RFC 1939 §3), CRLFs included.
func (c *client) multi(line string) string {
	c.t.Helper()
	c.ok(line)
	return unstuff(c.rawBody())
}

// unstuff removes the stuffing dot of each line that has one.
func unstuff(raw string) string {
	lines := strings.SplitAfter(raw, "\r\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, ".")
	}
	return strings.Join(lines, "")
}

// login logs in with USER and PASS.
func (c *client) login(user, password string) string {
	c.t.Helper()
	c.ok("USER " + user)
	return c.ok("PASS " + password)
}

// closed waits until the server closes the connection (EOF or a reset),
// failing if it sends anything else first or does not close in time.
func (c *client) closed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioWindow))
	l, err := c.r.ReadString('\n')
	if err == nil {
		c.t.Fatalf("got %q, want the connection closed", l)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("the connection is still open after %v", ioWindow)
	}
}

// waitUnlocked waits until address's maildrop lock is released.
func waitUnlocked(t testing.TB, be *fakeBackend, address string) {
	t.Helper()
	wait.For(t, 5*time.Second, func() bool { return !be.locked(address) }, "the maildrop lock of %s released", address)
}

// listenLoopback listens on 127.0.0.1:0.
func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// remoteAs wraps a listener so that its connections report addr as the
// client's address: the session then takes the client for one off
// loopback (the bytes still go over loopback).
func remoteAs(addr string) func(net.Listener) net.Listener {
	return func(l net.Listener) net.Listener {
		return &fakeRemoteListener{Listener: l, addr: &net.TCPAddr{IP: net.ParseIP(addr), Port: 40000}}
	}
}

type fakeRemoteListener struct {
	net.Listener
	addr net.Addr
}

func (l *fakeRemoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &fakeRemoteConn{Conn: c, addr: l.addr}, nil
}

type fakeRemoteConn struct {
	net.Conn
	addr net.Addr
}

func (c *fakeRemoteConn) RemoteAddr() net.Addr { return c.addr }
