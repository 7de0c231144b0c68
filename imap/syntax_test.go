package imap

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestBadSyntaxTellsTheClientsErrorsApart(t *testing.T) {
	for _, c := range []struct {
		name, args string
		bad        bool
	}{
		{"FETCH", "1:* (FLAGS)", false},
		{"FETCH", "1,3:5,7:* FLAGS", false},
		{"FETCH", "$ FLAGS", false},
		{"FETCH", "4294967295 FLAGS", false},
		{"FETCH", "x FLAGS", true},
		{"FETCH", "0 FLAGS", true},
		{"FETCH", "01 FLAGS", true},
		{"FETCH", "1:99999999999 FLAGS", true},
		{"FETCH", "4294967296 FLAGS", true},
		{"FETCH", "1,,2 FLAGS", true},
		{"STORE", "1:x +FLAGS (\\Seen)", true},
		{"COPY", "a Trash", true},
		{"MOVE", "1 Trash", false},
		{"UID", "FETCH 1:* FLAGS", false},
		{"UID", "fetch 0 FLAGS", true},
		{"UID", "EXPUNGE 1:5", false},
		{"UID", "EXPUNGE x", true},
		{"UID", "SEARCH UID 1:x", true},
		{"SEARCH", "FOO", true},
		{"SEARCH", "1:3 UNSEEN", false},
		{"SEARCH", "RETURN (MIN MAX) CHARSET UTF-8 OR (FROM \"a b\" SUBJECT x) NOT SEEN", false},
		{"SEARCH", "HEADER Message-ID \"<a@b>\" LARGER 10 SINCE 1-Feb-2024 BEFORE \"3-Mar-2025\"", false},
		{"SEARCH", "SINCE 32-Foo-2020", true},
		{"SEARCH", "NOT BOGUS", true},
		{"SEARCH", "(SEEN BOGUS)", true},
		{"SEARCH", "SUBJECT {3}", false}, // a literal: imapserver reads the rest
		{"SEARCH", "SUBJECT \"with \\\" quote\" ALL", false},
		{"LIST", "\"\" x", false},
		{"SELECT", "\"unterminated", true},
		{"SELECT", "\"a \\\" quote\"", false},
		{"SELECT", "\"ends in a backslash\\\"", true},
		{"LOGIN", "a \"b\"", false},
		{"ENABLE", "", true},
		{"ENABLE", "UTF8=ACCEPT", false},
	} {
		if got := badSyntax(c.name, c.args); (got != "") != c.bad {
			t.Errorf("badSyntax(%q, %q) = %q, want bad: %v", c.name, c.args, got, c.bad)
		}
	}
}

// TestSyntaxErrorsAnswerBADAndTheSessionGoesOn sends the commands
// imapserver took for its own errors to a server over loopback: each gets
// BAD [CLIENTBUG] and the session goes on.
func TestSyntaxErrorsAnswerBADAndTheSessionGoesOn(t *testing.T) {
	srv := startTestServer(t)
	conn, err := net.Dial("tcp", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting %q", l)
	}
	n := 0
	send := func(cmd string) string {
		t.Helper()
		n++
		tag := fmt.Sprintf("t%d", n)
		fmt.Fprintf(conn, "%s %s\r\n", tag, cmd)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: the connection ended: %v", cmd, err)
			}
			if strings.HasPrefix(l, tag+" ") {
				return strings.TrimRight(strings.TrimPrefix(l, tag+" "), "\r\n")
			}
		}
	}
	if r := send("LOGIN " + fakeUser + " " + fakePassword); !strings.HasPrefix(r, "OK") {
		t.Fatalf("LOGIN: %s", r)
	}
	if r := send("SELECT INBOX"); !strings.HasPrefix(r, "OK") {
		t.Fatalf("SELECT: %s", r)
	}
	for _, cmd := range []string{"FETCH x FLAGS", "FETCH 0 FLAGS", "UID FETCH 4294967296 FLAGS", "STORE 1:x +FLAGS (\\Seen)",
		"COPY y Trash", "UID EXPUNGE x", "SEARCH FOO", "SEARCH SINCE 32-Foo-2020", "UID SEARCH UID 1:x", `SELECT "unterminated`, "ENABLE"} {
		if r := send(cmd); !strings.HasPrefix(r, "BAD [CLIENTBUG] ") {
			t.Errorf("%s: %s, want BAD [CLIENTBUG]", cmd, r)
		}
	}
	// Lines that do not start with a tag and a name: imapserver closed
	// the connection.
	for _, cmd := range []string{"UID", "UID (x)", "FETCH(x)"} {
		if r := send(cmd); !strings.HasPrefix(r, "BAD Syntax error") {
			t.Errorf("%q: %s", cmd, r)
		}
	}
	for _, l := range []string{"\r\n", "+ x\r\n", "(a) NOOP\r\n"} {
		fmt.Fprint(conn, l)
		if got, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(got, "* BAD Syntax error") {
			t.Errorf("%q: %q, %v", l, got, err)
		}
	}
	// Lines over imapserver's limit: answered BAD, read away whole, the
	// session goes on.
	for _, size := range []int{60 << 10, 200 << 10} {
		if r := send("NOOP " + strings.Repeat("x", size)); r != "BAD Command line too long" {
			t.Errorf("a line of %d bytes: %.80s", size, r)
		}
	}
	if r := send("FETCH 1:* (FLAGS)"); !strings.HasPrefix(r, "OK") {
		t.Errorf("FETCH after the bad commands: %s", r)
	}
	// A line with no end: the connection ends after a BYE.
	fmt.Fprintf(conn, "t0 NOOP %s", strings.Repeat("x", 2<<20))
	var last string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			break
		}
		last = l
	}
	if last != "* BYE Command line too long\r\n" {
		t.Errorf("after a line of 2 MiB without an end: %q", last)
	}
}

const fakeUser, fakePassword = "u@example.test", "p"

// startTestServer serves IMAP on loopback over fakeBackend.
func startTestServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{Resync: time.Hour, OwnerCheck: time.Hour}, fakeBackend{}, nil)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln, false) }()
	t.Cleanup(func() { _ = srv.Close(); <-served })
	return ln.Addr().String()
}

// TestAppendOverTheLimitIsRefusedBeforeTheLiteral: a synchronizing
// literal larger than APPENDLIMIT gets NO [TOOBIG] instead of "+", and the
// session goes on; APPENDLIMIT is listed once after login.
func TestAppendOverTheLimitIsRefusedBeforeTheLiteral(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{Resync: time.Hour, OwnerCheck: time.Hour, MaxAppend: 1000}, fakeBackend{}, nil)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln, false) }()
	t.Cleanup(func() { _ = srv.Close(); <-served })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	line := func() string {
		t.Helper()
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimRight(l, "\r\n")
	}
	line() // greeting
	fmt.Fprintf(conn, "a LOGIN %s %s\r\n", fakeUser, fakePassword)
	if l := line(); !strings.HasPrefix(l, "a OK") || strings.Count(l, "APPENDLIMIT=1000") != 1 {
		t.Fatalf("LOGIN: %q, want APPENDLIMIT=1000 once", l)
	}
	fmt.Fprintf(conn, "b APPEND INBOX {1001}\r\n")
	if l := line(); !strings.HasPrefix(l, "b NO [TOOBIG]") {
		t.Fatalf("APPEND of 1001 bytes over a limit of 1000: %q", l)
	}
	fmt.Fprintf(conn, "c NOOP\r\n")
	if l := line(); l != "c OK NOOP completed" {
		t.Fatalf("NOOP after the refused APPEND: %q", l)
	}
	// The literal never came: the filter takes the next commands as
	// commands (ID is its own), not as the literal's bytes.
	fmt.Fprintf(conn, "d ID NIL\r\n")
	if l := line(); !strings.HasPrefix(l, `* ID ("name" "Homing"`) {
		t.Fatalf("ID after the refused APPEND: %q", l)
	}
	line()
	fmt.Fprintf(conn, "e SELECT {5000}\r\n") // a buffered literal over 4 KiB: refused too
	if l := line(); !strings.HasPrefix(l, "e NO [TOOBIG]") {
		t.Fatalf("a 5000-byte literal in a command: %q", l)
	}
	fmt.Fprintf(conn, "f FETCH x FLAGS\r\n")
	if l := line(); !strings.HasPrefix(l, "f BAD [CLIENTBUG]") {
		t.Fatalf("FETCH x after the refused literals: %q", l)
	}
	// A literal the server asks for still passes through.
	fmt.Fprintf(conn, "g APPEND INBOX {6}\r\n")
	if l := line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND of 6 bytes: %q", l)
	}
	fmt.Fprintf(conn, "x ID\r\n\r\n")
	if l := line(); !strings.HasPrefix(l, "g OK") {
		t.Fatalf("APPEND of a 6-byte literal that looks like ID: %q", l)
	}
}

// TestAuthenticateExchangePassesTheFilter: the client's answer to
// AUTHENTICATE's continuation request is no command; the filter passes it
// to imapserver.
func TestAuthenticateExchangePassesTheFilter(t *testing.T) {
	conn, err := net.Dial("tcp", startTestServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	line := func() string {
		t.Helper()
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimRight(l, "\r\n")
	}
	line()
	fmt.Fprintf(conn, "a AUTHENTICATE PLAIN\r\n")
	if l := line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("AUTHENTICATE PLAIN: %q", l)
	}
	fmt.Fprintf(conn, "%s\r\n", base64.StdEncoding.EncodeToString([]byte("\x00"+fakeUser+"\x00"+fakePassword)))
	if l := line(); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("AUTHENTICATE's answer: %q", l)
	}
	fmt.Fprintf(conn, "b ID NIL\r\n")
	if l := line(); !strings.HasPrefix(l, "* ID") {
		t.Fatalf("ID after AUTHENTICATE: %q", l)
	}
}
