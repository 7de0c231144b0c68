package smtp

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/textproto"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/tlog"
)

// ioTimeout bounds every read and write of a test client, so a broken
// server fails the test instead of hanging it.
const ioTimeout = 10 * time.Second

// fakeDirectory knows the domain example.test. Fault injection: err makes
// Resolve fail with it.
type fakeDirectory struct {
	mu       sync.Mutex
	domains  map[string]bool
	accounts map[string]string // address -> account
	err      error
	resolved []string // every address Resolve was asked about
}

func newFakeDirectory() *fakeDirectory {
	return &fakeDirectory{
		domains: map[string]bool{"example.test": true},
		accounts: map[string]string{
			"alice@example.test": "alice@example.test",
			"bob@example.test":   "bob@example.test",
			"carol@example.test": "carol@example.test",
			"dave@example.test":  "dave@example.test",
			"alias@example.test": "alice@example.test",
			"用户@example.test":    "alice@example.test",
		},
	}
}

func (d *fakeDirectory) IsLocalDomain(domain string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.domains[domain]
}

func (d *fakeDirectory) Resolve(ctx context.Context, addr string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resolved = append(d.resolved, addr)
	if d.err != nil {
		return "", d.err
	}
	if a, ok := d.accounts[addr]; ok {
		return a, nil
	}
	return "", fmt.Errorf("resolving %s: %w", addr, mail.ErrNoSuchUser)
}

func (d *fakeDirectory) setErr(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

func (d *fakeDirectory) resolvedAddrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.resolved...)
}

// fakeEnqueuer records what it is given. Fault injection: err is
// returned, panicMsg makes it panic.
type fakeEnqueuer struct {
	mu       sync.Mutex
	envs     []*mail.Envelope
	bodies   [][]byte
	err      error
	panicMsg string
}

func (q *fakeEnqueuer) Enqueue(ctx context.Context, msg *mail.Message) error {
	env := msg.Envelope
	body, err := mail.ReadBody(msg.Body)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.panicMsg != "" {
		panic(q.panicMsg)
	}
	if q.err != nil {
		return q.err
	}
	if env.ID == "" {
		return errors.New("fakeEnqueuer: the session did not set env.ID")
	}
	q.envs = append(q.envs, env.Clone())
	q.bodies = append(q.bodies, append([]byte(nil), body...))
	return nil
}

func (q *fakeEnqueuer) set(err error, panicMsg string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.err, q.panicMsg = err, panicMsg
}

func (q *fakeEnqueuer) messages() ([]*mail.Envelope, [][]byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*mail.Envelope(nil), q.envs...), append([][]byte(nil), q.bodies...)
}

// fakeAuth knows user "alice" with password "secret" (account
// alice@example.test). Fault injection: err is returned for every call.
type fakeAuth struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (a *fakeAuth) Authenticate(ctx context.Context, username, password string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.err != nil {
		return "", a.err
	}
	if username == "alice" && password == "secret" {
		return "alice@example.test", nil
	}
	return "", fmt.Errorf("user %s: %w", username, mail.ErrAuthFailed)
}

func (a *fakeAuth) callCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// testLimits shortens the waits of the abuse limits that tests do not set
// themselves: the delay after a failed AUTH (1 ms, doubling up to 20 ms)
// and the error sleep (1 ms).
func testLimits(cfg *Config) {
	if cfg.Auth.FailureDelay == 0 {
		cfg.Auth.FailureDelay = time.Millisecond
	}
	if cfg.Auth.MaxFailureDelay == 0 {
		cfg.Auth.MaxFailureDelay = max(20*time.Millisecond, cfg.Auth.FailureDelay)
	}
	if cfg.ErrorSleep == 0 {
		cfg.ErrorSleep = time.Millisecond
	}
}

// testServer is a Server on 127.0.0.1:0 with fakes, closed at the end of
// the test, which then fails if a panic was recovered that the test did
// not expect.
type testServer struct {
	*Server
	addr        string
	dir         *fakeDirectory
	enq         *fakeEnqueuer
	auth        *fakeAuth
	metrics     *Metrics
	reg         *prometheus.Registry
	wantPanics  int64
	serveResult chan error
}

func startServer(t *testing.T, cfg Config, withAuth bool) *testServer {
	t.Helper()
	if cfg.Hostname == "" {
		cfg.Hostname = "mx.example.test"
	}
	testLimits(&cfg)
	ts := &testServer{dir: newFakeDirectory(), enq: &fakeEnqueuer{}, reg: prometheus.NewRegistry(), serveResult: make(chan error, 1)}
	ts.metrics = NewMetrics(ts.reg)
	var auth Authenticator
	if withAuth {
		ts.auth = &fakeAuth{}
		auth = ts.auth
	}
	ts.Server = NewServer(cfg, ts.dir, ts.enq, auth, tlog.New(t, "smtp"), ts.metrics)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	go func() { ts.serveResult <- ts.Serve(l) }()
	t.Cleanup(func() {
		if err := ts.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-ts.serveResult; err != nil {
			t.Errorf("Serve returned %v after Close", err)
		}
		if got := ts.PanicsRecovered(); got != ts.wantPanics {
			t.Errorf("PanicsRecovered() = %d, want %d", got, ts.wantPanics)
		}
	})
	return ts
}

// rawClient speaks SMTP line by line, for tests that need exact bytes.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *textproto.Reader
}

// dialRaw connects and reads the greeting, which must be 220.
func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c := dialRawFrom(t, addr, nil)
	if code, msg := c.read(); code != 220 {
		t.Fatalf("greeting: %d %s", code, msg)
	}
	return c
}

// dialRawFrom connects from laddr (nil: any) without reading anything.
func dialRawFrom(t testing.TB, addr string, laddr net.Addr) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout, LocalAddr: laddr}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, r: textproto.NewReader(bufioReader(conn))}
}

// send writes s as it is.
func (c *rawClient) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// read reads one (possibly multi-line) reply.
func (c *rawClient) read() (int, string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	code, msg, err := c.r.ReadResponse(0)
	if err != nil {
		var pe *textproto.Error
		if !errors.As(err, &pe) {
			c.t.Fatalf("reading reply: %v", err)
		}
	}
	return code, msg
}

// cmd sends one command line and reads its reply.
func (c *rawClient) cmd(line string) (int, string) {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.read()
}

// expect sends line and fails the test unless the reply code is want.
func (c *rawClient) expect(line string, want int) string {
	c.t.Helper()
	code, msg := c.cmd(line)
	if code != want {
		c.t.Fatalf("%s: got %d %s, want %d", line, code, msg, want)
	}
	return msg
}

// expectClosed fails the test unless the server closes the connection.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	line, err := c.r.ReadLine()
	if err == nil {
		c.t.Fatalf("connection still open, got %q", line)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatal("connection still open after the timeout")
	}
}

// selfSignedTLS returns a server TLS config with a fresh certificate for
// the given names.
func selfSignedTLS(t testing.TB, names ...string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func textprotoReader(c net.Conn) *textproto.Reader { return textproto.NewReader(bufio.NewReader(c)) }

func isTimeout(err error, ne *net.Error) bool {
	return errors.As(err, ne) && (*ne).Timeout()
}
