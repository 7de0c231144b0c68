package pop3

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/wait"
)

func TestALongLineIsErrAndTheSessionGoesOn(t *testing.T) {
	ts := startWithMessages(t)
	c := dial(t, ts.addr)
	// The rule: a line over MaxLineLength (1024) is answered -ERR and
	// skipped to its end; the session goes on.
	if r := c.cmd("USER " + strings.Repeat("a", 2000)); r != "-ERR "+textLineTooLong {
		t.Fatalf("a 2005 octet line: %q", r)
	}
	c.login(alice, alicePW)
	if r := c.cmd("NOOP " + strings.Repeat("x", 5000)); r != "-ERR "+textLineTooLong {
		t.Errorf("a long line after login: %q", r)
	}
	if got := c.multi("RETR 1"); got != msg1 {
		t.Errorf("RETR after a long line: %q", got)
	}
	// A line of exactly MaxLineLength octets, CRLF included, is a line.
	if r := c.cmd("NOOP" + strings.Repeat(" ", 1024-6)); r != "+OK" {
		t.Errorf("a line of 1024 octets: %q", r)
	}
}

func TestALineLongerThanTheSkipLimitClosesTheConnection(t *testing.T) {
	ts := startServer(t, Config{MaxSkipLength: 8 << 10})
	c := dial(t, ts.addr)
	c.send(strings.Repeat("x", 9<<10))
	if r := c.line(); r != "-ERR "+textLineTooLong+", closing the connection" {
		t.Errorf("an endless line: %q", r)
	}
	c.closed()
}

func TestTooManyErrorsBeforeLoginCloseTheConnection(t *testing.T) {
	ts := startServer(t, Config{MaxErrorsBeforeAuth: 3})
	c := dial(t, ts.addr)
	if r := c.cmd("XYZZY"); r != "-ERR unknown command" {
		t.Errorf("1st: %q", r)
	}
	if r := c.cmd("\x01\x02"); r != "-ERR invalid character in command line" {
		t.Errorf("2nd: %q", r)
	}
	if r := c.cmd("STAT"); r != "-ERR "+textTooMany {
		t.Errorf("3rd: %q", r)
	}
	c.closed()
}

func TestErrorsAfterLoginDoNotCloseTheSession(t *testing.T) {
	ts := startServer(t, Config{MaxErrorsBeforeAuth: 2})
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	for range 5 {
		if r := c.cmd("BOGUS"); r != "-ERR unknown command" {
			t.Fatalf("BOGUS: %q", r)
		}
	}
	c.ok("NOOP")
}

func TestTooManyCommandsBeforeLoginCloseTheConnection(t *testing.T) {
	ts := startServer(t, Config{MaxCommandsBeforeAuth: 4})
	c := dial(t, ts.addr)
	for range 4 {
		c.ok("CAPA")
		c.rawBody()
	}
	if r := c.cmd("CAPA"); r != "-ERR too many commands before login, closing the connection" {
		t.Errorf("5th command: %q", r)
	}
	c.closed()
}

func TestTheLoginTimeoutClosesSilently(t *testing.T) {
	ts := startServer(t, Config{LoginTimeout: 100 * time.Millisecond})
	c := dial(t, ts.addr)
	// RFC 1939 §3: the server closes "without [...] sending any
	// response".
	start := time.Now()
	c.closed()
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("closed after %v, before the timeout", d)
	}
}

func TestTheIdleTimeoutAfterLoginDeletesNothing(t *testing.T) {
	ts := startServer(t, Config{LoginTimeout: time.Minute, IdleTimeout: 150 * time.Millisecond, AllowShortIdle: true})
	ts.be.add(alice, "1", msg1)
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	c.ok("DELE 1")
	c.closed()
	waitUnlocked(t, ts.be, alice)
	if calls := ts.be.deleteCalls(); len(calls) != 0 {
		t.Errorf("Delete called %v at the autologout", calls)
	}
}

func TestIdleTimeoutIsAtLeastTenMinutes(t *testing.T) {
	if got := (Config{IdleTimeout: time.Minute}).WithDefaults().IdleTimeout; got != 10*time.Minute {
		t.Errorf("IdleTimeout of 1 min became %v, want RFC 1939's 10 min", got)
	}
	if got := (Config{IdleTimeout: time.Hour}).WithDefaults().IdleTimeout; got != time.Hour {
		t.Errorf("IdleTimeout of 1 h became %v", got)
	}
}

func TestConnectionsOverTheLimitAreRefused(t *testing.T) {
	ts := startServer(t, Config{MaxConnectionsPerIP: 2})
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	over := dialRaw(t, ts.addr)
	if r := over.line(); r != "-ERR [SYS/TEMP] too many connections, try again later" {
		t.Errorf("3rd connection: %q", r)
	}
	over.closed()
	a.ok("QUIT")
	a.closed()
	// The place is given back.
	wait.For(t, 5*time.Second, func() bool { return ts.Sessions() == 1 }, "the first session ended")
	dial(t, ts.addr).ok("QUIT")
	b.ok("QUIT")
}

// countingLimiter admits up to max connections and records the clients.
type countingLimiter struct {
	mu      sync.Mutex
	max     int
	open    int
	clients []netip.Addr
}

func (l *countingLimiter) Admit(client netip.Addr) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clients = append(l.clients, client)
	if l.open >= l.max {
		return nil, false
	}
	l.open++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.open--
	}, true
}

func (l *countingLimiter) openNow() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

func TestTheLimiterHookDecides(t *testing.T) {
	lim := &countingLimiter{max: 1}
	ts := startServer(t, Config{Limiter: lim})
	c := dial(t, ts.addr)
	over := dialRaw(t, ts.addr)
	if r := over.line(); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
		t.Errorf("over the hook's limit: %q", r)
	}
	c.ok("QUIT")
	c.closed()
	wait.For(t, 5*time.Second, func() bool { return lim.openNow() == 0 }, "the place released")
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if len(lim.clients) != 2 || lim.clients[0] != mustAddr("127.0.0.1") {
		t.Errorf("the hook saw %v", lim.clients)
	}
}

func TestBadInputIsErrNeverAHangUp(t *testing.T) {
	ts := startServer(t, Config{MaxErrorsBeforeAuth: 100})
	c := dial(t, ts.addr)
	for _, line := range []string{"", " ", "\xff\xfe", "USER", "USER a b", "PASS", "TOP", "LIST -1", "AUTH", "AUTH PLAIN =", "QUIT\x00"} {
		if r := c.cmd(line); !strings.HasPrefix(r, "-ERR ") && !strings.HasPrefix(r, "+OK") {
			t.Errorf("%q: %q", line, r)
		} else if line == "AUTH" {
			c.rawBody()
		}
	}
	c.ok("QUIT")
	c.closed()
}
