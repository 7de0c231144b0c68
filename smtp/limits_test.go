package smtp

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/wait"
)

func TestSizeLimit(t *testing.T) {
	ts := startServer(t, Config{MaxMessageBytes: 1000}, false)
	c := dialRaw(t, ts.addr)
	if msg := c.expect("EHLO client.example", 250); !strings.Contains(msg, "SIZE 1000") {
		t.Errorf("EHLO does not advertise SIZE 1000: %q", msg)
	}
	if msg := c.expect("MAIL FROM:<s@remote.example> SIZE=1001", 552); !strings.HasPrefix(msg, "5.3.4 ") {
		t.Errorf("MAIL SIZE over the limit: %q", msg)
	}
	c.expect("MAIL FROM:<s@remote.example> SIZE=900", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	line := strings.Repeat("x", 78) + "\r\n"
	c.send(strings.Repeat(line, 20)) // 1600 bytes
	if msg := c.expect(".", 552); !strings.HasPrefix(msg, "5.3.4 ") {
		t.Errorf("oversized DATA: %q", msg)
	}
	c.expect("NOOP", 250) // still in step
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	c.send(strings.Repeat(line, 10))
	c.expect(".", 250)
	if envs, _ := ts.enq.messages(); len(envs) != 1 {
		t.Errorf("%d messages queued, want 1", len(envs))
	}
}

func TestRecipientLimit(t *testing.T) {
	ts := startServer(t, Config{MaxRecipients: 3}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("RCPT TO:<bob@example.test>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250) // duplicate: counts once
	c.expect("RCPT TO:<carol@example.test>", 250)
	if msg := c.expect("RCPT TO:<dave@example.test>", 452); !strings.HasPrefix(msg, "4.5.3 ") {
		t.Errorf("over the limit: %q", msg)
	}
	c.expect("RCPT TO:<bob@example.test>", 250) // a duplicate is still fine
	c.expect("DATA", 354)
	c.expect("hi\r\n.", 250)
	envs, _ := ts.enq.messages()
	if len(envs) != 1 || len(envs[0].Recipients) != 3 {
		t.Fatalf("envelopes = %+v", envs)
	}
}

func TestDataLineLength(t *testing.T) {
	ts := startServer(t, Config{MaxDataLineLength: 100}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	c.send(strings.Repeat("y", 100) + "\r\n" + strings.Repeat("z", 101) + "\r\n")
	if msg := c.expect(".", 550); msg != "5.6.0 Message contains a line that is too long" {
		t.Errorf("long line: %q", msg)
	}
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	c.send(strings.Repeat("y", 100) + "\r\n")
	c.expect(".", 250)
}

// TestPerIPConnectionLimit: the N+1th connection from one IP gets 421 and
// is closed; another IP is still served; closing a connection frees its
// place.
func TestPerIPConnectionLimit(t *testing.T) {
	ts := startServer(t, Config{MaxConnectionsPerIP: 2}, false)
	a := dialRaw(t, ts.addr)
	dialRaw(t, ts.addr)
	third := dialRawFrom(t, ts.addr, nil)
	if code, msg := third.read(); code != 421 || msg != "4.7.0 Too many connections" {
		t.Fatalf("third connection: %d %q", code, msg)
	}
	third.expectClosed()

	other := dialRawFrom(t, ts.addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if code, msg := other.read(); code != 220 {
		t.Fatalf("connection from 127.0.0.2: %d %q", code, msg)
	}

	a.expect("QUIT", 221)
	a.expectClosed()
	wait.For(t, ioTimeout, func() bool { return ts.lim.open() == 2 }, "the closed connection to be released")
	d := dialRaw(t, ts.addr)
	d.expect("NOOP", 250)
}

func TestTotalConnectionLimit(t *testing.T) {
	ts := startServer(t, Config{MaxConnections: 2}, false)
	dialRaw(t, ts.addr)
	dialRawFrom(t, ts.addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}).read()
	third := dialRawFrom(t, ts.addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if code, msg := third.read(); code != 421 || msg != "4.7.0 Too many connections" {
		t.Fatalf("third connection: %d %q", code, msg)
	}
	third.expectClosed()
}

func TestCommandTimeout(t *testing.T) {
	ts := startServer(t, Config{CommandTimeout: 200 * time.Millisecond}, false)
	c := dialRaw(t, ts.addr)
	start := time.Now()
	if code, msg := c.read(); code != 421 || !strings.HasPrefix(msg, "4.4.2") {
		t.Fatalf("idle client: %d %q", code, msg)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("timed out after %v, before CommandTimeout", d)
	}
	c.expectClosed()
	wait.For(t, ioTimeout, func() bool { return ts.lim.open() == 0 }, "the connection to be released")
}

// TestDataTimeout: DataTimeout bounds the DATA phase on its own; the
// connection is closed after a 421.
func TestDataTimeout(t *testing.T) {
	ts := startServer(t, Config{DataTimeout: 300 * time.Millisecond}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	c.send("Subject: slow\r\n")
	if code, msg := c.read(); code != 421 || !strings.HasPrefix(msg, "4.4.2 Timeout") {
		t.Fatalf("slow DATA: %d %q", code, msg)
	}
	c.expectClosed()
	if envs, _ := ts.enq.messages(); len(envs) != 0 {
		t.Errorf("%d messages queued", len(envs))
	}
}

// TestCommandLineLimit: a line longer than go-smtp's limit (see
// Config.MaxLineLength) closes the connection.
func TestCommandLineLimit(t *testing.T) {
	ts := startServer(t, Config{MaxLineLength: 100, MaxDataLineLength: 100}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.send("NOOP " + strings.Repeat("a", 2000) + "\r\n")
	if code, msg := c.read(); code != 500 || !strings.HasPrefix(msg, "5.4.0") {
		t.Fatalf("long command line: %d %q", code, msg)
	}
	c.expectClosed()
}
