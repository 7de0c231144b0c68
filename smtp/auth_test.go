package smtp

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/testkit/wait"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestSubmissionRequiresAuth(t *testing.T) {
	ts := startServer(t, Config{Submission: true}, true)
	c := dialRaw(t, ts.addr)
	if msg := c.expect("EHLO client.example", 250); !strings.Contains(msg, "AUTH PLAIN LOGIN") {
		t.Errorf("EHLO on loopback does not offer AUTH PLAIN LOGIN: %q", msg)
	}
	if msg := c.expect("MAIL FROM:<alice@example.test>", 530); !strings.HasPrefix(msg, "5.7.0 ") {
		t.Errorf("MAIL without AUTH: %q", msg)
	}
	c.expect("AUTH PLAIN "+b64("\x00alice\x00secret"), 235)
	c.expect("MAIL FROM:<alice@example.test>", 250)
	c.expect("RCPT TO:<friend@remote.example>", 250)
	c.expect("DATA", 354)
	c.expect("hi\r\n.", 250)
	c.expect("RSET", 250)
	c.expect("MAIL FROM:<alice@example.test>", 250) // AUTH survives RSET
	envs, _ := ts.enq.messages()
	if len(envs) != 1 || envs[0].Source != "submission" || envs[0].Auth != "alice@example.test" {
		t.Fatalf("envelope = %+v", envs)
	}
}

func TestSubmissionWithoutAuthenticatorAcceptsNothing(t *testing.T) {
	ts := startServer(t, Config{Submission: true}, false)
	c := dialRaw(t, ts.addr)
	if msg := c.expect("EHLO client.example", 250); strings.Contains(msg, "AUTH") {
		t.Errorf("AUTH offered without an Authenticator: %q", msg)
	}
	c.expect("AUTH PLAIN "+b64("\x00alice\x00secret"), 502)
	c.expect("MAIL FROM:<alice@example.test>", 530)
}

func TestAuthLogin(t *testing.T) {
	ts := startServer(t, Config{Submission: true}, true)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	if msg := c.expect("AUTH LOGIN", 334); msg != b64("Username:") {
		t.Errorf("first challenge %q", msg)
	}
	if msg := c.expect(b64("alice"), 334); msg != b64("Password:") {
		t.Errorf("second challenge %q", msg)
	}
	c.expect(b64("secret"), 235)
	c.expect("MAIL FROM:<alice@example.test>", 250)

	// With the user name as initial response.
	c2 := dialRaw(t, ts.addr)
	c2.expect("EHLO client.example", 250)
	c2.expect("AUTH LOGIN "+b64("alice"), 334)
	c2.expect(b64("secret"), 235)
}

// TestAuthFailures: wrong credentials get 535 5.7.8 after the configured
// delay; the MaxAuthFailures-th failure gets 421 and the connection is
// closed. A malformed response is a 501, not a failure count.
func TestAuthFailures(t *testing.T) {
	const delay = 50 * time.Millisecond
	ts := startServer(t, Config{Submission: true, MaxAuthFailures: 3, Auth: guard.Config{FailureDelay: delay}}, true)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("AUTH PLAIN "+b64("no-nul-bytes"), 501)
	for i := 1; i <= 2; i++ {
		start := time.Now()
		if msg := c.expect("AUTH PLAIN "+b64("\x00alice\x00wrong"), 535); !strings.HasPrefix(msg, "5.7.8 ") {
			t.Errorf("failure %d: %q", i, msg)
		}
		if d := time.Since(start); d < delay {
			t.Errorf("failure %d answered after %v, before the %v delay", i, d, delay)
		}
	}
	c.expect("AUTH PLAIN "+b64("\x00alice\x00other-user"), 421)
	c.expectClosed()
	wait.For(t, ioTimeout, func() bool { return ts.lim.open() == 0 }, "the connection to be released")

	// An authorization identity other than the user fails as well.
	c2 := dialRaw(t, ts.addr)
	c2.expect("EHLO client.example", 250)
	c2.expect("AUTH PLAIN "+b64("bob\x00alice\x00secret"), 535)
}

func TestAuthTemporaryFailure(t *testing.T) {
	ts := startServer(t, Config{Submission: true}, true)
	ts.auth.mu.Lock()
	ts.auth.err = errors.New("ldap: connection refused at 10.1.1.1")
	ts.auth.mu.Unlock()
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	msg := c.expect("AUTH PLAIN "+b64("\x00alice\x00secret"), 454)
	if !strings.HasPrefix(msg, "4.7.0 ") || strings.Contains(msg, "ldap") {
		t.Errorf("temporary failure: %q", msg)
	}
}

// TestAuthOverStartTLS: STARTTLS, then AUTH; the Received header says
// ESMTPSA.
func TestAuthOverStartTLS(t *testing.T) {
	ts := startServer(t, Config{Submission: true, TLSConfig: selfSignedTLS(t, "mx.example.test")}, true)
	c, err := gosmtp.DialStartTLS(ts.addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test certificate
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "secret")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("alice@example.test", []string{"friend@remote.example"}, strings.NewReader("Subject: x\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	envs, bodies := ts.enq.messages()
	if len(envs) != 1 || !strings.Contains(string(bodies[0]), " with ESMTPSA id ") {
		t.Fatalf("envelopes %+v, body %q", envs, bodies)
	}
}

// TestAuthNotOfferedInPlaintextToRemoteClients drives a session over
// net.Pipe, whose peer is neither TLS nor loopback: AUTH is not offered
// and an attempt gets 538 5.7.11 (RFC 4954 §6).
func TestAuthNotOfferedInPlaintextToRemoteClients(t *testing.T) {
	ps := startPipeServer(t, Config{Submission: true}, true)
	c := ps.dial(t)
	if msg := c.expect("EHLO client.example", 250); strings.Contains(msg, "AUTH") {
		t.Errorf("AUTH offered in plaintext to a non-loopback client: %q", msg)
	}
	if msg := c.expect("AUTH PLAIN "+b64("\x00alice\x00secret"), 538); !strings.HasPrefix(msg, "5.7.11 ") {
		t.Errorf("AUTH in plaintext: %q", msg)
	}
	if n := ps.auth.callCount(); n != 0 {
		t.Errorf("the Authenticator was asked %d times", n)
	}
	c.expect("QUIT", 221)
}

// pipeServer serves connections made with net.Pipe.
type pipeServer struct {
	*Server
	l    *pipeListener
	enq  *fakeEnqueuer
	auth *fakeAuth
}

func startPipeServer(t testing.TB, cfg Config, withAuth bool) *pipeServer {
	t.Helper()
	testLimits(&cfg)
	ps := &pipeServer{l: newPipeListener(), enq: &fakeEnqueuer{}}
	var auth Authenticator
	if withAuth {
		ps.auth = &fakeAuth{}
		auth = ps.auth
	}
	ps.Server = NewServer(cfg, newFakeDirectory(), ps.enq, auth, nil, nil)
	done := make(chan error, 1)
	go func() { done <- ps.Serve(ps.l) }()
	t.Cleanup(func() {
		ps.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ps
}

// dial returns a client on a new pipe, greeting read.
func (ps *pipeServer) dial(t testing.TB) *rawClient {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	if err := ps.l.push(server); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, conn: client, r: textprotoReader(client)}
	if code, msg := c.read(); code != 220 {
		t.Fatalf("greeting %d %q", code, msg)
	}
	return c
}

// pipeListener hands out connections pushed to it.
type pipeListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) push(c net.Conn) error {
	select {
	case l.conns <- c:
		return nil
	case <-l.closed:
		c.Close()
		return net.ErrClosed
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
