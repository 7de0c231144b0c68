package smtp

import (
	"net"
	"testing"
	"time"
)

// Failed AUTH attempts are limited per client IP across connections: once
// used up, even the right password gets 454 until the window passes.
func TestAuthFailuresLimitedPerIPAcrossConnections(t *testing.T) {
	ts := startServer(t, Config{MaxAuthFailures: 2, MaxAuthFailuresPerIP: 4, MaxAuthFailuresPerAccount: 100}, true)
	fails := 0
	for conn := 0; fails < 4; conn++ {
		c := dialRaw(t, ts.addr)
		c.expect("EHLO guesser.test", 250)
		for i := 0; i < 2 && fails < 4; i++ {
			code, _ := c.cmd("AUTH PLAIN " + b64("\x00alice\x00guess"))
			if code != 535 && code != 421 {
				t.Fatalf("wrong password: %d", code)
			}
			fails++
			if code == 421 {
				break
			}
		}
	}
	c := dialRaw(t, ts.addr)
	c.expect("EHLO guesser.test", 250)
	c.expect("AUTH PLAIN "+b64("\x00alice\x00secret"), 454)
	if n := ts.auth.callCount(); n != 4 {
		t.Fatalf("the authenticator was asked %d times, want 4 (the blocked attempt must not check)", n)
	}
}

// Failed attempts for one account are limited whatever the client address.
func TestAuthFailuresLimitedPerAccount(t *testing.T) {
	ts := startServer(t, Config{MaxAuthFailures: 10, MaxAuthFailuresPerIP: 100, MaxAuthFailuresPerAccount: 3}, true)
	for i := 0; i < 3; i++ {
		c := dialRawFrom(t, ts.addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))})
		c.read() // greeting
		c.expect("EHLO guesser.test", 250)
		c.expect("AUTH PLAIN "+b64("\x00alice\x00guess"), 535)
	}
	c := dialRawFrom(t, ts.addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9)})
	c.read() // greeting
	c.expect("EHLO other.test", 250)
	c.expect("AUTH PLAIN "+b64("\x00alice\x00secret"), 454)
}

// The window slides: failures older than it no longer count.
func TestAuthLimiterWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newAuthLimiter(time.Minute, 2, 2, func() time.Time { return now })
	l.failed("1.2.3.4", "a")
	l.failed("1.2.3.4", "b")
	if !l.blocked("1.2.3.4", "") {
		t.Fatal("not blocked after 2 failures")
	}
	now = now.Add(61 * time.Second)
	if l.blocked("1.2.3.4", "a") {
		t.Fatal("still blocked after the window")
	}
}
