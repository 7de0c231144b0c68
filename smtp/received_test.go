package smtp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

func TestSanitizeHELO(t *testing.T) {
	for in, want := range map[string]string{
		"client.example":                      "client.example",
		"[192.0.2.1]":                         "[192.0.2.1]",
		"[IPv6:2001:db8::1]":                  "[IPv6:2001:db8::1]",
		"evil\r\nX-Injected: yes":             "evilX-Injected:yes",
		"a (comment) b":                       "acommentb",
		"x;y<z>\"q\"\\":                       "xyzq",
		"":                                    "unknown",
		"((()))":                              "unknown",
		"münchen.example":                     "mnchen.example",
		strings.Repeat("a", 500) + ".example": strings.Repeat("a", maxHELOLen),
	} {
		if got := sanitizeHELO(in); got != want {
			t.Errorf("sanitizeHELO(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReceivedHeader(t *testing.T) {
	date := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("", 3600))
	one := []*mail.Recipient{{Addr: "alice@example.test"}}
	for _, tc := range []struct {
		name string
		r    received
		want string
	}{
		{"ipv4, one recipient", received{helo: "c.example", clientIP: netip.MustParseAddr("192.0.2.7"), by: "mx.example", id: "ID1", rcpts: one, date: date},
			"Received: from c.example ([192.0.2.7])\r\n\tby mx.example with ESMTP id ID1\r\n\tfor <alice@example.test>;\r\n\tThu, 02 Jan 2025 03:04:05 +0100\r\n"},
		{"ipv6, tls, auth, two recipients", received{helo: "c", clientIP: netip.MustParseAddr("2001:db8::1"), by: "mx", tls: true, auth: true, id: "ID2",
			rcpts: []*mail.Recipient{{Addr: "a@x"}, {Addr: "b@x"}}, date: date},
			"Received: from c ([IPv6:2001:db8::1])\r\n\tby mx with ESMTPSA id ID2;\r\n\tThu, 02 Jan 2025 03:04:05 +0100\r\n"},
		{"no IP, quoted recipient left out, utf8", received{helo: "unknown", by: "mx (evil)\r\nX: y", smtputf8: true, tls: true, id: "ID3",
			rcpts: []*mail.Recipient{{Addr: `"a;b (c)"@x`}}, date: date},
			"Received: from unknown\r\n\tby mxevilX:y with UTF8SMTPS id ID3;\r\n\tThu, 02 Jan 2025 03:04:05 +0100\r\n"},
	} {
		if got := string(receivedHeader(tc.r)); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestHELOInjection sends a HELO name full of header and comment syntax
// and checks the stored header and envelope.
func TestHELOInjection(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO evil.example)(X-Spam:no;", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	c.expect("hi\r\n.", 250)
	envs, bodies := ts.enq.messages()
	if len(envs) != 1 {
		t.Fatal("no message")
	}
	if envs[0].HELO != "evil.exampleX-Spam:no" {
		t.Errorf("HELO = %q", envs[0].HELO)
	}
	if !strings.HasPrefix(string(bodies[0]), "Received: from evil.exampleX-Spam:no ([127.0.0.1])\r\n") {
		t.Errorf("header: %q", bodies[0])
	}
}
