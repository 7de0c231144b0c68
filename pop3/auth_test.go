package pop3

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/testkit/wait"
)

// capa sends CAPA and returns the capability lines.
func (c *client) capa() []string {
	c.t.Helper()
	return strings.Split(strings.TrimSuffix(c.multi("CAPA"), "\r\n"), "\r\n")
}

// startTLS sends STLS and runs the client's handshake.
func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	if r := c.cmd("STLS"); r != "+OK begin TLS negotiation" {
		c.t.Fatalf("STLS: %q", r)
	}
	tc := tls.Client(c.conn, cfg)
	tc.SetDeadline(time.Now().Add(ioWindow))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	c.conn, c.r = tc, bufio.NewReader(tc)
}

func plain(authzid, user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(authzid + "\x00" + user + "\x00" + password))
}

func TestCapaOnLoopbackOffersUserAndSaslPlain(t *testing.T) {
	cert := newTestCert(t)
	ts := startServer(t, Config{TLSConfig: cert.server, Implementation: "Homing test"})
	c := dial(t, ts.addr)
	want := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "SASL PLAIN", "STLS", "IMPLEMENTATION Homing test"}
	if got := c.capa(); !slices.Equal(got, want) {
		t.Errorf("CAPA before login: %q, want %q", got, want)
	}
	c.login(alice, alicePW)
	want = []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION Homing test"}
	if got := c.capa(); !slices.Equal(got, want) {
		t.Errorf("CAPA after login: %q, want %q", got, want)
	}
	for _, cmd := range []string{"USER x", "PASS x", "AUTH PLAIN", "STLS"} {
		if r := c.cmd(cmd); r != "-ERR already logged in" {
			t.Errorf("%s after login: %q", cmd, r)
		}
	}
}

func TestCommandsBeforeLoginAreRefused(t *testing.T) {
	ts := startServer(t, Config{MaxErrorsBeforeAuth: 20})
	c := dial(t, ts.addr)
	for _, cmd := range []string{"STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL"} {
		if r := c.cmd(cmd); r != "-ERR not logged in" {
			t.Errorf("%s before login: %q", cmd, r)
		}
	}
	if r := c.cmd("APOP alice 0123456789abcdef0123456789abcdef"); r != "-ERR unknown command" {
		t.Errorf("APOP: %q", r)
	}
	if r := c.cmd("PASS " + alicePW); r != "-ERR USER first" {
		t.Errorf("PASS without USER: %q", r)
	}
	if r := c.cmd("STLS"); r != "-ERR TLS not available" {
		t.Errorf("STLS without TLS: %q", r)
	}
	if r := c.cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("QUIT: %q", r)
	}
	c.closed()
}

func TestUserPassLogsInWithSpacesInThePassword(t *testing.T) {
	ts := startServer(t, Config{})
	ts.be.addAccount("bob@example.test", "  two  spaces ")
	c := dial(t, ts.addr)
	c.ok("USER bob@example.test")
	if r := c.cmd("PASS   two  spaces "); r != "+OK maildrop has 0 messages (0 octets)" {
		t.Errorf("PASS: %q", r)
	}
}

func TestWrongPasswordIsDelayedAndTheThirdClosesTheConnection(t *testing.T) {
	delay := 100 * time.Millisecond
	ts := startServer(t, Config{Auth: guard.Config{FailureDelay: delay, MaxFailureDelay: delay}})
	c := dial(t, ts.addr)
	for i := 1; i <= 3; i++ {
		c.ok("USER " + alice)
		start := time.Now()
		if r := c.cmd("PASS wrong"); r != "-ERR [AUTH] authentication failed" {
			t.Fatalf("failure %d: %q", i, r)
		}
		if d := time.Since(start); d < delay {
			t.Errorf("failure %d answered after %v, before the guard's delay of %v", i, d, delay)
		}
	}
	// MaxAuthFailures (3): the connection is closed after the third.
	c.closed()
	if n := ts.be.authCount(); n != 3 {
		t.Errorf("%d password checks, want 3", n)
	}
}

func TestFailedLoginsAreThrottledByTheSharedGuardUnchecked(t *testing.T) {
	g := guard.New(guard.Config{FailureDelay: time.Millisecond, MaxFailureDelay: time.Millisecond, MaxFailuresPerAccount: 2})
	ts := startServer(t, Config{Guard: g})
	for range 2 {
		c := dial(t, ts.addr)
		c.ok("USER " + alice)
		if r := c.cmd("PASS wrong"); r != "-ERR [AUTH] authentication failed" {
			t.Fatalf("PASS: %q", r)
		}
	}
	// The account's budget from this network is used up: even the right
	// password is refused without a check, over USER/PASS and AUTH.
	c := dial(t, ts.addr)
	c.ok("USER " + alice)
	if r := c.cmd("PASS " + alicePW); r != "-ERR [SYS/TEMP] too many failed logins, try again later" {
		t.Errorf("PASS over the budget: %q", r)
	}
	if r := c.cmd("AUTH PLAIN " + plain("", alice, alicePW)); r != "-ERR [SYS/TEMP] too many failed logins, try again later" {
		t.Errorf("AUTH over the budget: %q", r)
	}
	if n := ts.be.authCount(); n != 2 {
		t.Errorf("%d password checks, want 2 (the refused ones unchecked)", n)
	}
	if _, acct := g.Failures(mustAddr("127.0.0.1"), alice); acct != 2 {
		t.Errorf("the guard counts %d failures of the account, want 2", acct)
	}
	// Another account from the same network is not affected.
	ts.be.addAccount("bob@example.test", "pw")
	c.login("bob@example.test", "pw")
}

func TestBusyPasswordGateRefusesTheLogin(t *testing.T) {
	g := guard.New(guard.Config{MaxChecks: 1, CheckWait: time.Millisecond, FailureDelay: time.Millisecond})
	release, err := g.Gate().Enter(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ts := startServer(t, Config{Guard: g})
	c := dial(t, ts.addr)
	c.ok("USER " + alice)
	if r := c.cmd("PASS " + alicePW); r != "-ERR [SYS/TEMP] too many logins in progress, try again later" {
		t.Errorf("PASS with the gate full: %q", r)
	}
	if n := ts.be.authCount(); n != 0 {
		t.Errorf("%d password checks with the gate full", n)
	}
}

func TestAuthenticatorFailureIsTemporary(t *testing.T) {
	ts := startServer(t, Config{})
	ts.be.set(func(b *fakeBackend) { b.authErr = errTemporaryForTest })
	c := dial(t, ts.addr)
	c.ok("USER " + alice)
	if r := c.cmd("PASS " + alicePW); r != "-ERR [SYS/TEMP] "+textTemporary {
		t.Errorf("PASS: %q", r)
	}
	ts.be.set(func(b *fakeBackend) { b.authErr = nil })
	c.login(alice, alicePW)
}

func TestAuthPlainWithInitialResponseAndContinuation(t *testing.T) {
	ts := startServer(t, Config{})
	ts.be.add(alice, "1", msg1)

	c := dial(t, ts.addr)
	if got := c.multi("AUTH"); got != "PLAIN\r\n" {
		t.Errorf("AUTH: %q", got)
	}
	if r := c.cmd("AUTH PLAIN " + plain("", alice, alicePW)); !strings.HasPrefix(r, "+OK maildrop has 1") {
		t.Fatalf("AUTH PLAIN with an initial response: %q", r)
	}
	c.ok("QUIT")
	c.closed()
	waitUnlocked(t, ts.be, alice)

	// RFC 5034 §4: without an initial response, "+ " and the response
	// on a line of its own; an authzid equal to the user is fine.
	c = dial(t, ts.addr)
	if r := c.cmd("auth plain"); r != "+ " {
		t.Fatalf("AUTH PLAIN: %q, want the empty challenge", r)
	}
	if r := c.cmd(plain(alice, alice, alicePW)); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("the response: %q", r)
	}
}

func TestAuthPlainRefusesCancelMalformedAndOtherUsers(t *testing.T) {
	ts := startServer(t, Config{MaxAuthFailures: 10})
	ts.be.addAccount("bob@example.test", "pw")
	c := dial(t, ts.addr)
	if r := c.cmd("AUTH PLAIN"); r != "+ " {
		t.Fatalf("AUTH PLAIN: %q", r)
	}
	// RFC 5034 §4: "*" cancels.
	if r := c.cmd("*"); r != "-ERR authentication cancelled" {
		t.Errorf("*: %q", r)
	}
	for _, resp := range []string{
		"not-base64!",
		"=",
		base64.StdEncoding.EncodeToString([]byte("no nuls")),
		base64.StdEncoding.EncodeToString([]byte("\x00\x00pw")),
		base64.StdEncoding.EncodeToString([]byte("\x00alice@example.test\x00")),
		base64.StdEncoding.EncodeToString([]byte("a\x00b\x00c\x00d")),
	} {
		if r := c.cmd("AUTH PLAIN " + resp); r != "-ERR malformed authentication response" {
			t.Errorf("AUTH PLAIN %s: %q", resp, r)
		}
	}
	if r := c.cmd("AUTH CRAM-MD5"); r != "-ERR unsupported authentication mechanism" {
		t.Errorf("AUTH CRAM-MD5: %q", r)
	}
	if r := c.cmd("AUTH PLAIN a b"); r != "-ERR "+textSyntax {
		t.Errorf("AUTH PLAIN a b: %q", r)
	}
	// Acting as another user is not supported: wrong credentials.
	if r := c.cmd("AUTH PLAIN " + plain("bob@example.test", alice, alicePW)); r != "-ERR [AUTH] authentication failed" {
		t.Errorf("authzid of another user: %q", r)
	}
	if r := c.cmd("AUTH PLAIN " + plain("", alice, "wrong")); r != "-ERR [AUTH] authentication failed" {
		t.Errorf("wrong password: %q", r)
	}
	c.ok("AUTH PLAIN " + plain("", alice, alicePW))
}

func TestOffLoopbackPasswordsNeedTLS(t *testing.T) {
	cert := newTestCert(t)
	// The session sees a client at 192.0.2.7 (TEST-NET-1); the bytes go
	// over loopback.
	ts := startServer(t, Config{TLSConfig: cert.server}, remoteAs("192.0.2.7"))
	c := dial(t, ts.addr)
	want := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS", "IMPLEMENTATION Homing"}
	if got := c.capa(); !slices.Equal(got, want) {
		t.Errorf("CAPA without TLS: %q, want %q (no USER, no SASL)", got, want)
	}
	refused := "-ERR [AUTH] " + textPlaintext
	for _, cmd := range []string{"USER " + alice, "PASS " + alicePW, "AUTH PLAIN " + plain("", alice, alicePW), "AUTH PLAIN"} {
		if r := c.cmd(cmd); r != refused {
			t.Errorf("%s without TLS: %q", strings.Fields(cmd)[0], r)
		}
	}
	if got := c.multi("AUTH"); got != "" {
		t.Errorf("AUTH lists %q without TLS", got)
	}
	if n := ts.be.authCount(); n != 0 {
		t.Errorf("%d password checks without TLS", n)
	}
	c.startTLS(cert.client)
	want = []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "SASL PLAIN", "IMPLEMENTATION Homing"}
	if got := c.capa(); !slices.Equal(got, want) {
		t.Errorf("CAPA after STLS: %q, want %q", got, want)
	}
	if r := c.cmd("STLS"); r != "-ERR command not permitted when TLS active" {
		t.Errorf("STLS twice: %q", r)
	}
	c.login(alice, alicePW)
}

func TestWithoutTLSConfigOffLoopbackNoPasswordIsTaken(t *testing.T) {
	ts := startServer(t, Config{}, remoteAs("2001:db8::1"))
	c := dial(t, ts.addr)
	want := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION Homing"}
	if got := c.capa(); !slices.Equal(got, want) {
		t.Errorf("CAPA: %q, want %q", got, want)
	}
	if r := c.cmd("USER " + alice); r != "-ERR [AUTH] "+textPlaintext {
		t.Errorf("USER: %q", r)
	}
}

func TestStlsDropsCommandsPipelinedBeforeTheHandshake(t *testing.T) {
	cert := newTestCert(t)
	ts := startServer(t, Config{TLSConfig: cert.server})
	c := dial(t, ts.addr)
	// CVE-2011-0411: a plaintext command injected after STLS must not
	// be answered inside the TLS session.
	c.send("STLS\r\nUSER injected\r\n")
	if r := c.line(); r != "+OK begin TLS negotiation" {
		t.Fatalf("STLS: %q", r)
	}
	tc := tls.Client(c.conn, cert.client)
	tc.SetDeadline(time.Now().Add(ioWindow))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	// The injected USER was dropped: PASS finds no USER.
	if r := c.cmd("PASS " + alicePW); r != "-ERR USER first" {
		t.Errorf("first reply after STLS: %q", r)
	}
}

func TestImplicitTLSServesPop3s(t *testing.T) {
	cert := newTestCert(t)
	ts := startServer(t, Config{TLSConfig: cert.server}, remoteAs("198.51.100.3"))
	ts.be.add(alice, "1", msg1)
	c := dialTLS(t, ts.tlsAddr, cert.client)
	caps := c.capa()
	if slices.Contains(caps, "STLS") || !slices.Contains(caps, "USER") {
		t.Errorf("CAPA over implicit TLS: %q", caps)
	}
	c.login(alice, alicePW)
	if got := c.multi("RETR 1"); got != msg1 {
		t.Errorf("RETR: %q", got)
	}
	c.ok("QUIT")
}

func TestFailedHandshakeClosesTheConnection(t *testing.T) {
	cert := newTestCert(t)
	ts := startServer(t, Config{TLSConfig: cert.server})
	c := dialRaw(t, ts.tlsAddr)
	c.send("USER plaintext on a TLS port\r\n")
	c.closed()
	wait.For(t, 5*time.Second, func() bool { return ts.Sessions() == 0 }, "the session ended")
}

func TestServeTLSWithoutConfigFails(t *testing.T) {
	srv := NewServer(Config{}, newFakeBackend(), nil)
	defer srv.Close()
	l := listenLoopback(t)
	if err := srv.ServeTLS(l); !errors.Is(err, ErrNoTLS) {
		t.Errorf("ServeTLS: %v", err)
	}
}
