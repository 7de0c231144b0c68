package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{{nil, 0}, {[]time.Duration{3}, 3}, {[]time.Duration{5, 1, 3}, 3}, {[]time.Duration{4, 1, 3, 2}, 2}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := median([]float64{2, 9, 1}); got != 2 {
		t.Errorf("median of floats: %v", got)
	}
}

// The messages are the same on every run, with CRLF line ends, flags a
// third \Seen and one in 17 \Flagged, and sizes of 1 to 8 KiB.
func TestGenerateIsStable(t *testing.T) {
	a, b := generate(200), generate(200)
	for i := range a {
		if !bytes.Equal(a[i].Raw, b[i].Raw) || !a[i].Date.Equal(b[i].Date) {
			t.Fatalf("message %d differs between two runs", i)
		}
		if bytes.Contains(bytes.ReplaceAll(a[i].Raw, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("message %d has a bare LF", i)
		}
		if n := len(a[i].Raw); n < 1024 || n > 9*1024 {
			t.Errorf("message %d: %d bytes", i, n)
		}
	}
	if len(a[0].Flags) != 2 || len(a[1].Flags) != 0 || len(a[3].Flags) != 1 {
		t.Errorf("flags %v %v %v", a[0].Flags, a[1].Flags, a[3].Flags)
	}
}

// The Maildir name carries the sizes Dovecot reads from it and the flags
// in ASCII order.
func TestMaildirName(t *testing.T) {
	m := message{Raw: []byte("a\r\nb\r\n"), Flags: []imap.Flag{imap.FlagSeen, imap.FlagFlagged}, Date: time.Unix(1700000000, 0)}
	if got, want := maildirName(7, m, 4), "1700000000.M7P1.bench,S=4,W=6:2,FS"; got != want {
		t.Errorf("maildirName = %q, want %q", got, want)
	}
}

func TestParseArgs(t *testing.T) {
	cfg, err := parseArgs([]string{"--sizes", "1000, 2000", "--rounds", "3"}, io.Discard)
	if err != nil || len(cfg.Sizes) != 2 || cfg.Sizes[1] != 2000 || cfg.Rounds != 3 || cfg.Sessions != 50 {
		t.Fatalf("%+v, %v", cfg, err)
	}
	for _, bad := range [][]string{{"--sizes", "x"}, {"--sizes", "10"}, {"--rounds", "0"}} {
		if _, err := parseArgs(bad, io.Discard); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
