package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	cases := map[string]string{
		"hello":             `ADDHEADER "X-Homing-Filtered: yes" OK`,
		"cheap SPAM-TEST":   `REJECTED "spam"`,
		"DISCARD-TEST":      "DISCARD",
		"FAIL-TEST":         `FAILURE "temporary failure requested"`,
		"ERROR-TEST":        `ERROR "message refused by the example filter"`,
		"spam-test (lower)": `ADDHEADER "X-Homing-Filtered: yes" OK`,
	}
	for subject, want := range cases {
		if got := decide(subject); got != want {
			t.Errorf("decide(%q) = %q, want %q", subject, got, want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	in := "Return-Path: <a@example.net>\r\nEnvelope-To: <b@example.test>\r\nSubject: one\r\n two\r\nsubject: second\r\nX-Test-Delay: 5ms\r\n\r\nSubject: in the body\r\n"
	h, err := parseHeader(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if h["subject"] != "one two" || h["x-test-delay"] != "5ms" || h["return-path"] != "<a@example.net>" {
		t.Fatalf("header %v", h)
	}
}

// TestRun drives the protocol loop: handshake, answers for every request
// (in any order), an information line, and an exit at the end of input.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, subject string) string {
		p := filepath.Join(dir, name)
		msg := "Return-Path: <a@example.net>\r\nEnvelope-To: <b@example.test>\r\nSubject: " + subject + "\r\n\r\nbody\r\n"
		if err := os.WriteFile(p, []byte(msg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	in := strings.Join([]string{
		"1 INTF 3",
		"2 FILE " + write("a", "hello"),
		"3 FILE " + write("b", "SPAM-TEST"),
		"4 FILE " + write("c", "DISCARD-TEST"),
		"5 FILE " + filepath.Join(dir, "missing"),
		"6 NOPE",
		"garbage",
	}, "\n") + "\n"
	var out bytes.Buffer
	if code := run(strings.NewReader(in), &out, options{maxDelay: 10 * time.Millisecond}); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(lines[0], "* homing-filter-example started") {
		t.Fatalf("first line %q", lines[0])
	}
	for _, want := range []string{
		"1 INTF 3",
		`2 ADDHEADER "X-Homing-Filtered: yes" OK`,
		`3 REJECTED "spam"`,
		"4 DISCARD",
		`5 FAILURE "cannot read the message file"`,
		`6 FAILURE "unknown command"`,
		`* cannot parse request "garbage"`,
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("no line %q in\n%s", want, out.String())
		}
	}
}

func TestHangWhile(t *testing.T) {
	dir := t.TempDir()
	hold := filepath.Join(dir, "hold")
	if err := os.WriteFile(hold, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	run(strings.NewReader("7 FILE /nonexistent\n"), &out, options{hangWhile: hold})
	if !strings.Contains(out.String(), "* holding 7\n") || strings.Contains(out.String(), "7 FAILURE") {
		t.Fatalf("output %q", out.String())
	}
}
