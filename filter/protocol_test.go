package filter

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseResponse(t *testing.T) {
	cases := []struct {
		line    string
		seq     uint64
		verb    string
		verdict Verdict
		version int
	}{
		{"1 INTF 3\n", 1, verbINTF, Verdict{}, 3},
		{"7 INTF 0012\r\n", 7, verbINTF, Verdict{}, 12},
		{"2 OK", 2, verbOK, Verdict{Kind: KindOK}, 0},
		{"2  ok  ", 2, verbOK, Verdict{Kind: KindOK}, 0},
		{"18446744073709551615 DISCARD", 18446744073709551615, verbDiscard, Verdict{Kind: KindDiscard}, 0},
		{`3 ADDHEADER "X-A: \"q\" \\ \t" OK`, 3, verbAddHeader, Verdict{Kind: KindOK, Headers: []string{"X-A: \"q\" \\ \t"}}, 0},
		{`3 ADDHEADER "X-A: 1\e\eX-B: 2\e  more"`, 3, verbAddHeader, Verdict{Kind: KindOK, Headers: []string{"X-A: 1", "X-B: 2  more"}}, 0},
		{`3 ADDHEADER "X-C: \065\066" ok`, 3, verbAddHeader, Verdict{Kind: KindOK, Headers: []string{"X-C: AB"}}, 0},
		{`4 REJECTED "virus \"EICAR\" found"`, 4, verbRejected, Verdict{Kind: KindReject, Text: `virus "EICAR" found`}, 0},
		{`4 REJECTED spam, go away`, 4, verbRejected, Verdict{Kind: KindReject, Text: "spam, go away"}, 0},
		{`5 ERROR "line1\eline2"`, 5, verbError, Verdict{Kind: KindError, Text: "line1 line2"}, 0},
		{"6 FAILURE", 6, verbFailure, Verdict{Kind: KindFailure}, 0},
		{"6 failure \"busy\"", 6, verbFailure, Verdict{Kind: KindFailure, Text: "busy"}, 0},
		{"6 FAILURE tab\there\x01", 6, verbFailure, Verdict{Kind: KindFailure, Text: "tab here"}, 0},
	}
	for _, c := range cases {
		r, err := parseResponse(c.line)
		if err != nil {
			t.Errorf("%q: %v", c.line, err)
			continue
		}
		if r.info || r.seq != c.seq || !r.hasSeq || r.verb != c.verb || r.version != c.version ||
			r.verdict.Kind != c.verdict.Kind || r.verdict.Text != c.verdict.Text || !slices.Equal(r.verdict.Headers, c.verdict.Headers) {
			t.Errorf("%q: got %+v, want seq %d verb %s verdict %+v version %d", c.line, r, c.seq, c.verb, c.verdict, c.version)
		}
	}
}

func TestParseInfo(t *testing.T) {
	r, err := parseResponse("* scanner ready\x07\r\n")
	if err != nil || !r.info || r.text != "scanner ready" || r.hasSeq {
		t.Fatalf("info line: %+v, %v", r, err)
	}
	r, err = parseResponse("*")
	if err != nil || !r.info || r.text != "" {
		t.Fatalf("bare asterisk: %+v, %v", r, err)
	}
}

func TestParseResponseErrors(t *testing.T) {
	cases := []struct {
		line   string
		hasSeq bool
		header bool
	}{
		{"", false, false},
		{"OK", false, false},
		{"x1 OK", false, false},
		{"1", true, false},
		{"1OK", true, false},
		{"99999999999999999999 OK", false, false},
		{"1 ", true, false},
		{"1 NOPE", true, false},
		{"1 OK more", true, false},
		{"1 DISCARD now", true, false},
		{"1 INTF", true, false},
		{"1 INTF -3", true, false},
		{"1 INTF +3", true, false},
		{"1 INTF 0", true, false},
		{"1 INTF 1234567890", true, false},
		{"1 ADDHEADER", true, false},
		{"1 ADDHEADER X-A: 1", true, false},
		{`1 ADDHEADER "X-A: 1`, true, false},
		{`1 ADDHEADER "X-A: 1\`, true, false},
		{`1 ADDHEADER "X-A: \q"`, true, false},
		{`1 ADDHEADER "X-A: \25"`, true, false},
		{`1 ADDHEADER "X-A: \256"`, true, false},
		{`1 ADDHEADER "X-A: 1" REJECTED`, true, false},
		{`1 REJECTED "a" b`, true, false},
		{`1 ERROR "unterminated`, true, false},
		{`1 ADDHEADER ""`, true, true},
		{`1 ADDHEADER "\e\e"`, true, true},
		{`1 ADDHEADER ": no name"`, true, true},
		{`1 ADDHEADER "X-A: 1\r\nBcc: x"`, true, true},
		{`1 ADDHEADER "X-A: 1\nBcc: x"`, true, true},
		{`1 ADDHEADER "X-A: 1\rBcc: x"`, true, true},
		{`1 ADDHEADER "X-A: 1\013\010Bcc: x"`, true, true},
		{`1 ADDHEADER "X-A: \127"`, true, true},
		{`1 ADDHEADER "X-A: \255"`, true, true}, // not UTF-8
		{"1 ADDHEADER \"X-A: \x1b[31m\"", true, true},
		{`1 ADDHEADER "X\tA: 1"`, true, true},
		{`1 ADDHEADER "X-A: ` + strings.Repeat("y", 995) + `"`, true, true},
	}
	for _, c := range cases {
		r, err := parseResponse(c.line)
		var perr *ProtocolError
		if !errors.As(err, &perr) || !errors.Is(err, ErrProtocol) {
			t.Errorf("%q: error %v, want a *ProtocolError", c.line, err)
			continue
		}
		if r.hasSeq != c.hasSeq {
			t.Errorf("%q: hasSeq %v, want %v", c.line, r.hasSeq, c.hasSeq)
		}
		if errors.Is(err, ErrBadHeader) != c.header {
			t.Errorf("%q: ErrBadHeader %v, want %v (%v)", c.line, !c.header, c.header, err)
		}
	}
}

func TestHeaderLengthLimit(t *testing.T) {
	ok := "X-A: " + strings.Repeat("y", maxFieldBytes-5)
	if f, err := headerFields([]string{ok}); err != nil || len(f[0]) != maxFieldBytes {
		t.Fatalf("998-byte field: %v", err)
	}
	if _, err := headerFields([]string{ok + "y"}); err == nil {
		t.Fatal("999-byte field accepted")
	}
}

func TestSanitizeText(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	got := sanitizeText(long)
	if len(got) > maxTextBytes || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Fatalf("cut text: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if got := sanitizeText(" a\x00b\xffc\u0085d "); got != "a b\uFFFDc d" {
		t.Fatalf("sanitizeText = %q", got)
	}
}

func TestSeqPrefix(t *testing.T) {
	if s, ok := seqPrefix("12 REJECTED xxxx"); !ok || s != 12 {
		t.Fatalf("seqPrefix = %d, %v", s, ok)
	}
	for _, l := range []string{"", "x 1", "12", "12X", "99999999999999999999 OK"} {
		if _, ok := seqPrefix(l); ok {
			t.Errorf("seqPrefix(%q) found a number", l)
		}
	}
}

// FuzzParseResponse checks that no line panics the parser and that what it
// accepts keeps the promises of Verdict: headers without CR, LF or control
// characters, a name and a colon, at most 998 bytes; texts without control
// characters, valid UTF-8, at most 512 bytes.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"1 INTF 3", "2 OK", "3 DISCARD", `4 ADDHEADER "X-A: 1\eX-B: 2" OK`, `5 REJECTED "spam"`,
		"6 ERROR bad", "7 FAILURE", "* hello", `8 ADDHEADER "X-A: 1\r\nBcc: x" OK`, `9 ADDHEADER "X: \013\010"`,
		"10 MIRROR a@b", `11 ERROR "\255\e\t"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := parseResponse(line)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not match ErrProtocol", err)
			}
			return
		}
		checkText := func(s string) {
			if len(s) > maxTextBytes || !utf8.ValidString(s) {
				t.Fatalf("text %q: too long or not UTF-8", s)
			}
			for _, c := range s {
				if c < 0x20 || c == 0x7f {
					t.Fatalf("control character in text %q", s)
				}
			}
		}
		if r.info {
			checkText(r.text)
			return
		}
		if !r.hasSeq {
			t.Fatal("accepted a line without a sequence number")
		}
		checkText(r.verdict.Text)
		if len(r.verdict.Headers) > 0 && r.verdict.Kind != KindOK {
			t.Fatal("headers with a verdict other than OK")
		}
		for _, h := range r.verdict.Headers {
			if strings.ContainsAny(h, "\r\n\x00") || len(h) > maxFieldBytes || !strings.Contains(h, ":") || !utf8.ValidString(h) {
				t.Fatalf("unsafe header %q accepted", h)
			}
			if err := validField(h); err != nil {
				t.Fatalf("header %q accepted but invalid: %v", h, err)
			}
		}
	})
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("a", 20)
	in := "1 OK\r\n" + "12345678\n" + "123456789\n" + long + "\n2 OK\nlast"
	type got struct {
		line    string
		tooLong bool
	}
	var lines []got
	err := readLines(strings.NewReader(in), 8, func(l []byte, tooLong bool) {
		lines = append(lines, got{string(l), tooLong})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []got{{"1 OK\r\n", false}, {"12345678\n", false}, {"12345678", true}, {"aaaaaaaa", true}, {"2 OK\n", false}, {"last", false}}
	if !slices.Equal(lines, want) {
		t.Fatalf("lines %+v, want %+v", lines, want)
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "HOMING_SECRET=s3cret", "HOMING_TOKEN=t", "HOME=/root", "XHOMING_=kept"})
	if !slices.Equal(got, []string{"PATH=/bin", "HOME=/root", "XHOMING_=kept"}) {
		t.Fatalf("childEnv = %q", got)
	}
}
