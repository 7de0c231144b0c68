package smtp

import (
	"strconv"
	"strings"
	"testing"
)

// TestSmuggling sends messages whose bodies hide a second transaction
// behind a non-standard end-of-data sequence (SMTP smuggling). go-smtp
// only ends DATA at CRLF.CRLF, so the hidden transaction is part of the
// body; the session must refuse that body because of its bare CR or LF, so
// neither the carrier nor the smuggled message is queued. A clean message
// before it is queued, and the connection stays usable.
//
// One sequence, CRLF "." CR, never reaches the session: go-smtp's DATA
// reader drops a "." CR at the start of a line that is not followed by LF,
// so the body arrives clean, with the hidden commands as ordinary lines of
// text. That message is accepted as one message to its own recipient; the
// hidden transaction is still not a transaction.
func TestSmuggling(t *testing.T) {
	smuggled := "MAIL FROM:<ceo@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n" +
		"Subject: smuggled\r\n\r\nsmuggled\r\n"
	for _, tc := range []struct {
		name, fakeEnd string
		cleaned       bool // go-smtp removes the sequence before the session sees it
	}{
		{"LF.CRLF", "\n.\r\n", false},
		{"CR.CRLF", "\r.\r\n", false},
		{"LF.LF", "\n.\n", false},
		{"CRLF.LF", "\r\n.\n", false},
		{"CRLF.CR", "\r\n.\r", true},
		{"LF.CR", "\n.\r", false},
		{"bare CR at the end", "\r", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Config{}, false)
			c := dialRaw(t, ts.addr)
			c.expect("EHLO client.example", 250)

			c.expect("MAIL FROM:<s@remote.example>", 250)
			c.expect("RCPT TO:<alice@example.test>", 250)
			c.expect("DATA", 354)
			c.expect("Subject: clean\r\n\r\nclean\r\n.", 250)

			c.expect("MAIL FROM:<s@remote.example>", 250)
			c.expect("RCPT TO:<alice@example.test>", 250)
			c.expect("DATA", 354)
			c.send("Subject: carrier\r\n\r\ncarrier" + tc.fakeEnd + smuggled)
			code, msg := c.cmd(".")
			c.expect("NOOP", 250)
			c.expect("QUIT", 221)
			envs, bodies := ts.enq.messages()
			if tc.cleaned {
				if code != 250 || len(envs) != 2 {
					t.Fatalf("end of the carrier: %d %q, %d messages; want 250 and 2", code, msg, len(envs))
				}
				if !strings.Contains(string(bodies[1]), "carrier\r\nMAIL FROM:<ceo@example.test>\r\n") {
					t.Errorf("carrier body = %q", bodies[1])
				}
			} else {
				if code != 550 || msg != "5.6.0 Message contains bare CR or LF" {
					t.Fatalf("end of the carrier: %d %q, want 550 5.6.0", code, msg)
				}
				if len(envs) != 1 {
					t.Fatalf("%d messages reached the Enqueuer, want 1", len(envs))
				}
			}
			if !strings.Contains(string(bodies[0]), "Subject: clean") || strings.Contains(string(bodies[0]), "smuggled") {
				t.Errorf("first queued body = %q", bodies[0])
			}
			for _, env := range envs {
				if len(env.Recipients) != 1 || env.Recipients[0].Addr != "alice@example.test" || env.From != "s@remote.example" {
					t.Errorf("queued envelope %+v: the smuggled transaction got through", env)
				}
			}
			if got := ts.dir.resolvedAddrs(); len(got) != 2 || got[0] != "alice@example.test" || got[1] != "alice@example.test" {
				t.Errorf("Resolve calls = %v: a smuggled RCPT was seen as a command", got)
			}
		})
	}
}

// TestBareLFInBDAT: the same rule holds for CHUNKING (go-smtp always
// advertises it).
func TestBareLFInBDAT(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	chunk := "Subject: x\r\n\r\nline\nsmuggled\r\n"
	c.send("BDAT " + itoa(len(chunk)) + " LAST\r\n" + chunk)
	if code, msg := c.read(); code != 550 || !strings.HasPrefix(msg, "5.6.0 ") {
		t.Fatalf("BDAT with bare LF: %d %q", code, msg)
	}
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	chunk = "Subject: x\r\n\r\nfine\r\n"
	c.send("BDAT " + itoa(len(chunk)) + " LAST\r\n" + chunk)
	if code, msg := c.read(); code != 250 {
		t.Fatalf("clean BDAT: %d %q", code, msg)
	}
	envs, bodies := ts.enq.messages()
	if len(envs) != 1 || !strings.HasSuffix(string(bodies[0]), chunk) {
		t.Fatalf("queued %d messages: %q", len(envs), bodies)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
