package smtp

import (
	"slices"
	"strings"
	"testing"
)

// relayTricks are RCPT TO arguments that must never be accepted from an
// unauthenticated client of the MX listener. want is the reply code; 0
// means any 5xx. Comments say what go-smtp hands to Session.Rcpt.
var relayTricks = []struct {
	name, rcpt string
	want       int
}{
	{"plain relay", "<user@remote.example>", 554},
	{"relay, mixed case", "<user@REMOTE.Example>", 554},
	{"relay, quoted local part", `<"user"@remote.example>`, 554},
	{"percent hack", "<user%remote.example@example.test>", 554},
	{"percent hack, mixed case", "<USER%remote.example@EXAMPLE.TEST>", 554},
	{"bang path", "<remote.example!user@example.test>", 554},
	{"bang path and percent", "<remote.example!user%other.example@example.test>", 554},
	{"quoted @", `<"user@remote.example"@example.test>`, 554},             // user@remote.example@example.test
	{"quoted %", `<"user%remote.example"@example.test>`, 554},             // user%remote.example@example.test
	{"quoted !", `<"remote.example!user"@example.test>`, 554},             // remote.example!user@example.test
	{"quoted source route", `<"@remote.example:user"@example.test>`, 554}, // @remote.example:user@example.test
	{"two @, local last", "<user@remote.example@example.test>", 554},
	{"two @, local first", "<user@example.test@remote.example>", 554},
	{"comma in domain", "<user@example.test,@remote.example>", 554},
	{"source route to a remote mailbox", "<@example.test:user@remote.example>", 554},        // user@remote.example
	{"source route, two hops", "<@example.test,@mx.example.test:user@remote.example>", 554}, // user@remote.example
	{"trailing dot, local domain", "<alice@example.test.>", 501},
	{"trailing dot, remote domain", "<user@remote.example.>", 501},
	{"trailing dots, mixed case", "<alice@Example.Test..>", 501},
	{"address literal", "<user@[127.0.0.1]>", 554},
	{"percent in the domain", "<user@remote.example%example.test>", 501},
	{"quoted, no domain", `<"user@remote.example">`, 501},
	{"empty quoted local part", `<""@example.test>`, 501},
	{"no brackets, source route", "@example.test:user@remote.example", 554},
}

func TestRelayTricksUnauthenticated(t *testing.T) {
	// Every trick gets its own answer in one session: more errors than
	// the hard error limit (TestHardErrorLimit) allows by default.
	ts := startServer(t, Config{HardErrorLimit: 1000}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	for _, tc := range relayTricks {
		code, msg := c.cmd("RCPT TO:" + tc.rcpt)
		if code/100 != 5 || (tc.want != 0 && code != tc.want) {
			t.Errorf("%s: RCPT TO:%s got %d %s, want %d", tc.name, tc.rcpt, code, msg, tc.want)
		}
		if code == 554 && !strings.HasPrefix(msg, "5.7.1 ") {
			t.Errorf("%s: 554 without 5.7.1: %q", tc.name, msg)
		}
	}
	// Nothing was accepted: DATA has no recipients.
	c.expect("DATA", 502)
	// The directory was never asked about a trick.
	if got := ts.dir.resolvedAddrs(); len(got) != 0 {
		t.Errorf("Resolve was called for %v", got)
	}
	// Positive controls on the same connection.
	c.expect("RCPT TO:<alice@EXAMPLE.TEST>", 250)
	c.expect(`RCPT TO:<"bob"@example.test>`, 250)
	if got := ts.dir.resolvedAddrs(); !slices.Equal(got, []string{"alice@example.test", "bob@example.test"}) {
		t.Errorf("Resolve calls = %v", got)
	}
}

// TestSourceRouteToLocalMailbox documents what happens to a source route
// that ends at a local mailbox: go-smtp drops the route before the session
// sees the address, so the mail goes to the local mailbox (RFC 5321
// Appendix C: servers SHOULD ignore the route). Nothing is relayed.
func TestSourceRouteToLocalMailbox(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<@remote.example:alice@example.test>", 250)
	c.expect("DATA", 354)
	c.expect("hi\r\n.", 250)
	envs, _ := ts.enq.messages()
	if len(envs) != 1 || len(envs[0].Recipients) != 1 {
		t.Fatalf("envelopes = %+v", envs)
	}
	if r := envs[0].Recipients[0]; r.Addr != "alice@example.test" || r.Account != "alice@example.test" {
		t.Errorf("recipient = %+v, want the local mailbox alice@example.test", r)
	}
}

// TestRelayTricksAuthenticated: an authenticated client may relay to
// remote domains, but relay syntax is refused to it too (553 5.1.3).
func TestRelayTricksAuthenticated(t *testing.T) {
	ts := startServer(t, Config{}, true)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("AUTH PLAIN AGFsaWNlAHNlY3JldA==", 235) // \0alice\0secret
	c.expect("MAIL FROM:<alice@example.test>", 250)
	for _, rcpt := range []string{
		"<user%remote.example@example.test>",
		`<"user@remote.example"@example.test>`,
		"<remote.example!user@remote.example>",
		"<user@example.test@remote.example>",
	} {
		if code, msg := c.cmd("RCPT TO:" + rcpt); code != 553 || !strings.HasPrefix(msg, "5.1.3 ") {
			t.Errorf("RCPT TO:%s got %d %s, want 553 5.1.3", rcpt, code, msg)
		}
	}
	c.expect("RCPT TO:<user@remote.example>", 250)
	c.expect("RCPT TO:<bob@example.test>", 250)
	c.expect("DATA", 354)
	c.expect("hi\r\n.", 250)
	envs, bodies := ts.enq.messages()
	if len(envs) != 1 {
		t.Fatalf("%d messages", len(envs))
	}
	rs := envs[0].Recipients
	if len(rs) != 2 || rs[0].Addr != "user@remote.example" || rs[0].Account != "" || rs[1].Account != "bob@example.test" {
		t.Errorf("recipients = %+v %+v", rs[0], rs[1])
	}
	if envs[0].Auth != "alice@example.test" {
		t.Errorf("Auth = %q", envs[0].Auth)
	}
	if !strings.Contains(string(bodies[0]), " with ESMTPA id ") {
		t.Errorf("Received header lacks ESMTPA: %q", bodies[0])
	}
}
