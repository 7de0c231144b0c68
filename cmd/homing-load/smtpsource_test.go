package main

import (
	"strings"
	"testing"
)

func TestSMTPSourceArgs(t *testing.T) {
	cfg := config{N: 20000, Size: 4096, C: 20, Accounts: 500, Domain: "example.test", From: "bench@example.test"}
	got := strings.Join(smtpSourceArgs(cfg, "127.0.0.1:2525"), " ")
	if want := "-c -l 4096 -m 20000 -s 20 -f bench@example.test -t user0000@example.test 127.0.0.1:2525"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
}

func TestParseSourceOutput(t *testing.T) {
	for _, c := range []struct {
		out   string
		count int64
		err   string
	}{
		{"1\r2\r3\r\n", 3, ""},
		{"", 0, ""},
		{"1\r2\r3\r4\r5\r6\r7\r8\r9\r10\rsmtp-source: fatal: end of data rejected: 451 4.0.0 later\n", 10, "fatal: end of data rejected: 451 4.0.0 later"},
		{"smtp-source: fatal: connect to 127.0.0.1:1: Connection refused\n", 0, "fatal: connect to 127.0.0.1:1: Connection refused"},
	} {
		n, msg := parseSourceOutput(c.out)
		if n != c.count || msg != c.err {
			t.Errorf("parseSourceOutput(%q) = %d, %q; want %d, %q", c.out, n, msg, c.count, c.err)
		}
	}
}
