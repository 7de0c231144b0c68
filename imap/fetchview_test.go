package imap

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homing-mail/homing/actors/pb"
)

// countingBackend is fakeBackend counting the FETCH operations it gets.
type countingBackend struct {
	fakeBackend
	fetches *atomic.Int64
}

func (b countingBackend) Mailbox(ctx context.Context, op *pb.MailboxOp) (*pb.MailboxReply, error) {
	if op.Kind == pb.MailboxOp_FETCH {
		b.fetches.Add(1)
	}
	return b.fakeBackend.Mailbox(ctx, op)
}

// TestFetchOfFlagsIsAnsweredFromTheView: UID FETCH 1:* (FLAGS) asks the
// owner nothing and answers the flags of the view; FETCH with anything
// more (RFC822.SIZE) asks the owner.
func TestFetchOfFlagsIsAnsweredFromTheView(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fetches := &atomic.Int64{}
	srv := New(Config{Resync: time.Hour, OwnerCheck: time.Hour}, countingBackend{fetches: fetches}, nil)
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
	br.ReadString('\n')
	cmd := func(tag, line string) []string {
		t.Helper()
		fmt.Fprintf(conn, "%s %s\r\n", tag, line)
		var out []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			l = strings.TrimRight(l, "\r\n")
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					t.Fatalf("%s: %s", line, l)
				}
				return out
			}
			out = append(out, l)
		}
	}
	cmd("a", "LOGIN "+fakeUser+" "+fakePassword)
	cmd("b", "SELECT INBOX")
	got := cmd("c", "UID FETCH 1:* (FLAGS)")
	want := []string{`* 1 FETCH (UID 1 FLAGS (\Seen))`, `* 2 FETCH (UID 2 FLAGS ())`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("UID FETCH 1:* (FLAGS):\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := fetches.Load(); n != 0 {
		t.Errorf("UID FETCH of flags asked the owner %d times", n)
	}
	if got := cmd("d", "FETCH 2 (FLAGS RFC822.SIZE)"); len(got) != 1 || !strings.Contains(got[0], "RFC822.SIZE") {
		t.Errorf("FETCH 2 (FLAGS RFC822.SIZE): %q", got)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("FETCH of a size asked the owner %d times, want once", n)
	}
}

// writeCounter counts the writes to the connections it accepts.
type writeCounter struct {
	net.Listener
	writes *atomic.Int64
}

func (l writeCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return countingConn{c, l.writes}, err
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestAnAnswerGoesOutInOneWrite: the lines of one command's answer (a
// FETCH of every message and its OK) reach the network in one write, not
// one for each line as imapserver flushes them.
func TestAnAnswerGoesOutInOneWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	writes := &atomic.Int64{}
	srv := New(Config{Resync: time.Hour, OwnerCheck: time.Hour}, fakeBackend{}, nil)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(writeCounter{ln, writes}, false) }()
	t.Cleanup(func() { _ = srv.Close(); <-served })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	br.ReadString('\n')
	cmd := func(tag, line string) int {
		t.Helper()
		fmt.Fprintf(conn, "%s %s\r\n", tag, line)
		n := 0
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			n++
			if strings.HasPrefix(l, tag+" ") {
				return n
			}
		}
	}
	cmd("a", "LOGIN "+fakeUser+" "+fakePassword)
	cmd("b", "SELECT INBOX")
	before := writes.Load()
	lines := cmd("c", "FETCH 1:* (UID FLAGS RFC822.SIZE)")
	if w := writes.Load() - before; lines != 3 || w != 1 {
		t.Errorf("FETCH 1:*: %d lines in %d writes, want 3 lines in 1", lines, w)
	}
}
