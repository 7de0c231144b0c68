package pop3

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

// canon runs s through a canonWriter in pieces of every size from 1 to
// len(s) and checks that every split gives the same output; it returns
// the output and the octets counted.
func canon(t *testing.T, s string, stuff bool, top int) (string, int64) {
	t.Helper()
	var want string
	var wantN int64
	for piece := 1; piece <= max(len(s), 1); piece++ {
		var out bytes.Buffer
		c := newCanonWriter(&out, stuff, top)
		for i := 0; i < len(s) && !c.Done(); i += piece {
			if _, err := c.Write([]byte(s[i:min(i+piece, len(s))])); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Finish(); err != nil {
			t.Fatal(err)
		}
		if piece == 1 {
			want, wantN = out.String(), c.Written()
		} else if out.String() != want || c.Written() != wantN {
			t.Fatalf("%q in pieces of %d: %q (%d), in pieces of 1: %q (%d)", s, piece, out.String(), c.Written(), want, wantN)
		}
	}
	return want, wantN
}

func TestCanonWriterStuffsDotsAndMakesLineEndsCRLF(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"", ""},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb", "a\r\nb\r\n"},
		{"a\r", "a\r\n"},
		{".\r\n", "..\r\n"},
		{"..x\r\n.\r\n", "...x\r\n..\r\n"},
		{"a\r\n.b\n.", "a\r\n..b\r\n..\r\n"},
		{"a.b\r\n x.\r\n", "a.b\r\n x.\r\n"},
		{"a\r.b\r\n", "a\r.b\r\n"}, // a bare CR ends no line: no stuffing after it
		{"\r\n.\r\n", "\r\n..\r\n"},
	} {
		out, n := canon(t, tc.in, true, -1)
		if out != tc.out {
			t.Errorf("%q: got %q, want %q", tc.in, out, tc.out)
		}
		if n != int64(len(unstuff(tc.out))) {
			t.Errorf("%q: counted %d octets, want %d (the unstuffed output)", tc.in, n, len(unstuff(tc.out)))
		}
	}
}

func TestCanonWriterTopPassesHeaderBlankLineAndNLines(t *testing.T) {
	msg := "Subject: x\r\nFrom: a@b\r\n\r\nline1\r\n.line2\r\nline3\r\n"
	for _, tc := range []struct {
		top int
		out string
	}{
		{0, "Subject: x\r\nFrom: a@b\r\n\r\n"},
		{1, "Subject: x\r\nFrom: a@b\r\n\r\nline1\r\n"},
		{2, "Subject: x\r\nFrom: a@b\r\n\r\nline1\r\n..line2\r\n"},
		{3, "Subject: x\r\nFrom: a@b\r\n\r\nline1\r\n..line2\r\nline3\r\n"},
		{99, "Subject: x\r\nFrom: a@b\r\n\r\nline1\r\n..line2\r\nline3\r\n"},
	} {
		if out, _ := canon(t, msg, true, tc.top); out != tc.out {
			t.Errorf("TOP %d: got %q, want %q", tc.top, out, tc.out)
		}
	}
	// Bare LF line ends, and a message that is all header.
	if out, _ := canon(t, "A: 1\n\nb1\nb2\n", true, 1); out != "A: 1\r\n\r\nb1\r\n" {
		t.Errorf("LF message, TOP 1: %q", out)
	}
	if out, _ := canon(t, "A: 1\r\nB: 2", true, 0); out != "A: 1\r\nB: 2\r\n" {
		t.Errorf("header only, TOP 0: %q", out)
	}
}

func TestCanonicalSizeCountsCRLFLinesWithoutStuffing(t *testing.T) {
	for in, want := range map[string]int64{
		"":                             0,
		"a\r\n":                        3,
		"a\n":                          3,
		"a":                            3,
		".\r\n..\r\n":                  7,
		"x\ny\r\nz":                    9,
		strings.Repeat("line\n", 1000): 6000,
	} {
		n, err := CanonicalSize(iotest.OneByteReader(strings.NewReader(in)))
		if err != nil || n != want {
			t.Errorf("%.20q: %d %v, want %d", in, n, err, want)
		}
	}
}

func TestUniqueIDKeepsValidIDsAndHashesOthers(t *testing.T) {
	for _, id := range []string{"1", "42", "~x", strings.Repeat("a", 70), "!~"} {
		if got := UniqueID(id); got != id {
			t.Errorf("%q: got %q", id, got)
		}
	}
	seen := map[string]string{}
	for _, id := range []string{"", "a b", strings.Repeat("a", 71), "é", "a\x7f"} {
		u := UniqueID(id)
		if !validUniqueID(u) {
			t.Errorf("%q: %q is not a valid unique-id", id, u)
		}
		if u != UniqueID(id) {
			t.Errorf("%q: not stable", id)
		}
		if other, dup := seen[u]; dup {
			t.Errorf("%q and %q both give %q", id, other, u)
		}
		seen[u] = id
	}
}
