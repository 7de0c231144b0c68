package pop3

import (
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/testkit/wait"
)

// FuzzParseCommand checks the command parser's promises on any line: a
// command has a keyword of three or four ASCII letters in upper case, no
// control character anywhere, and its Args are its Rest split at spaces.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		"STAT\r\n", "list 1\r\n", "TOP 1 10\n", "PASS a b  c\r\n", "USER jörg@example.test\r\n",
		"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", "\r\n", "ST\x00AT\r\n", "RETR 99999999999999999999\r\n", " NOOP",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		cmd, err := parseCommand(line)
		if err != nil {
			return
		}
		if len(cmd.Name) < 3 || len(cmd.Name) > 4 || strings.ToUpper(cmd.Name) != cmd.Name {
			t.Fatalf("keyword %q", cmd.Name)
		}
		for _, c := range []byte(cmd.Name) {
			if c < 'A' || c > 'Z' {
				t.Fatalf("keyword %q", cmd.Name)
			}
		}
		for _, c := range []byte(cmd.Rest) {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("control character in %q", cmd.Rest)
			}
		}
		if !slices.Equal(cmd.Args, strings.Fields(cmd.Rest)) {
			t.Fatalf("args %q of %q", cmd.Args, cmd.Rest)
		}
		for _, a := range cmd.Args {
			if n, ok := parseNumber(a); ok {
				if v, err := strconv.Atoi(a); err != nil || v != n || v < 0 {
					t.Fatalf("number %q parsed as %d", a, n)
				}
			}
		}
	})
}

// FuzzSession drives a session over net.Pipe (as a loopback client, so
// that passwords are taken) with fuzzed input, in either state: the seeds
// log in first. It fails if a panic was recovered, if the server stops
// reading without closing the connection, or if the session does not end
// after the client hangs up.
func FuzzSession(f *testing.F) {
	login := "USER " + alice + "\r\nPASS " + alicePW + "\r\n"
	for _, seed := range []string{
		login + "STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nDELE 1\r\nRSET\r\nDELE 2\r\nQUIT\r\n",
		login + "RETR 3\r\nTOP 1 999999999\r\nLIST 0\r\nDELE 1\r\nDELE 1\r\nRETR 1\r\n",
		"AUTH PLAIN\r\n*\r\nAUTH PLAIN =\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nAUTH\r\n",
		"AUTH PLAIN\r\n" + plain("", alice, alicePW) + "\r\nCAPA\r\nNOOP\r\n",
		"CAPA\r\nSTLS\r\nAPOP a b\r\nUSER\r\nPASS x\r\n",
		"\x00\xff\r\n\r\n\n\n" + strings.Repeat("x", 3000) + "\r\n",
	} {
		f.Add([]byte(seed))
	}
	// Budgets that fuzzed wrong passwords do not use up, so that logins
	// keep being checked.
	noBudget := guard.Config{FailureDelay: time.Millisecond, MaxFailureDelay: time.Millisecond,
		MaxFailuresPerAccount: 1 << 30, MaxFailuresPerNetwork: 1 << 30}
	ts := startServer(f, Config{Auth: noBudget, MaxErrorsBeforeAuth: 50, MaxAuthFailures: 50, LoginTimeout: 5 * time.Second,
		IdleTimeout: 5 * time.Second, AllowShortIdle: true, WriteTimeout: 5 * time.Second, MaxLineLength: 256, MaxSkipLength: 2048})
	ts.be.add(alice, "1", msg1)
	ts.be.add(alice, "2", msg2)
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

	f.Fuzz(func(t *testing.T, input []byte) {
		client, server := net.Pipe()
		defer client.Close()
		ts.accept(&fakeRemoteConn{Conn: server, addr: loopback}, false)
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, client)
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		for _, chunk := range [][]byte{input, []byte("\r\nQUIT\r\n")} {
			if _, err := client.Write(chunk); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("the server stopped reading without closing the connection: %v", err)
				}
				break // the server closed the connection (QUIT, too many errors, ...)
			}
		}
		client.Close()
		<-drained
		wait.For(t, 10*time.Second, func() bool { return ts.Sessions() == 0 }, "the session did not end after the client hung up")
		wait.For(t, 10*time.Second, func() bool { return !ts.be.locked(alice) }, "the maildrop lock was not released")
		if n := ts.PanicsRecovered(); n != 0 {
			t.Fatalf("%d panics recovered", n)
		}
		// A QUIT may have deleted messages: put them back.
		ts.be.set(func(b *fakeBackend) {
			if len(b.accounts[alice].msgs) != 2 {
				b.accounts[alice].msgs = []fakeMessage{{id: "1", raw: []byte(msg1), size: int64(len(msg1))}, {id: "2", raw: []byte(msg2), size: int64(len(msg2))}}
			}
		})
	})
}
