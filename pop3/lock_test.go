package pop3

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/wait"
)

func TestASecondSessionIsRefusedInUseUntilTheFirstEnds(t *testing.T) {
	ts := startWithMessages(t)
	first := dial(t, ts.addr)
	first.login(alice, alicePW)
	first.ok("DELE 1")

	second := dial(t, ts.addr)
	second.ok("USER " + alice)
	// RFC 2449 §8.1: the credentials were right, the maildrop is locked.
	if r := second.cmd("PASS " + alicePW); r != "-ERR [IN-USE] maildrop already locked by another session" {
		t.Fatalf("second PASS: %q", r)
	}
	if r := second.cmd("AUTH PLAIN " + plain("", alice, alicePW)); !strings.HasPrefix(r, "-ERR [IN-USE]") {
		t.Errorf("second AUTH: %q", r)
	}
	// The refused session stays in the AUTHORIZATION state.
	if r := second.cmd("STAT"); r != "-ERR not logged in" {
		t.Errorf("STAT after IN-USE: %q", r)
	}
	// The first session is unaffected.
	if r := first.cmd("STAT"); r != fmt.Sprintf("+OK 1 %d", len(msg2)) {
		t.Errorf("first STAT: %q", r)
	}
	first.ok("QUIT")
	// The lock is released before QUIT's +OK: a client that logs in again
	// at once is not refused.
	if ts.be.locked(alice) {
		t.Error("the lock is still held when QUIT is answered")
	}

	second.ok("USER " + alice)
	if r := second.cmd("PASS " + alicePW); r != fmt.Sprintf("+OK maildrop has 1 messages (%d octets)", len(msg2)) {
		t.Errorf("second PASS after the first QUIT: %q", r)
	}
}

func TestBackendOpenAndListFailuresAreSysCodes(t *testing.T) {
	ts := startServer(t, Config{})
	c := dial(t, ts.addr)
	for _, tc := range []struct {
		open, list error
		want       string
	}{
		{open: mail.ErrUnavailable, want: "-ERR [SYS/TEMP] " + textTemporary},
		{open: mail.ErrNotFound, want: "-ERR [SYS/PERM] mailbox unavailable"},
		{list: mail.ErrUnavailable, want: "-ERR [SYS/TEMP] " + textTemporary},
	} {
		ts.be.set(func(b *fakeBackend) { b.openErr, b.listErr = tc.open, tc.list })
		c.ok("USER " + alice)
		if r := c.cmd("PASS " + alicePW); r != tc.want {
			t.Errorf("open %v, list %v: %q, want %q", tc.open, tc.list, r, tc.want)
		}
		if ts.be.locked(alice) {
			t.Errorf("list %v: the lock is still held", tc.list)
		}
	}
	ts.be.set(func(b *fakeBackend) { b.openErr, b.listErr = nil, nil })
	c.login(alice, alicePW)
}

func TestAMessageThatCannotBeReadEndsTheResponseAndTheSession(t *testing.T) {
	ts := startWithMessages(t)
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	c.ok("DELE 1")
	ts.be.set(func(b *fakeBackend) { b.readFailAfter = 10 })
	if r := c.cmd("RETR 2"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("RETR: %q", r)
	}
	// The client gets no terminator: it must not take part of a message
	// for the message.
	c.conn.SetReadDeadline(time.Now().Add(ioWindow))
	var got strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		got.WriteString(l)
		if err != nil {
			break
		}
		if l == ".\r\n" {
			t.Fatalf("a terminator after a failed read: %q", got.String())
		}
	}
	if got.String() != msg2[:10] {
		t.Errorf("received %q, want the first 10 octets", got.String())
	}
	waitUnlocked(t, ts.be, alice)
	if calls := ts.be.deleteCalls(); len(calls) != 0 {
		t.Errorf("Delete called %v", calls)
	}
}

func TestAMessageThatCannotBeOpenedIsErrAndTheSessionGoesOn(t *testing.T) {
	ts := startWithMessages(t)
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	ts.be.set(func(b *fakeBackend) { b.accounts[alice].msgs[0].id = "gone" })
	// The list still names "1", which the backend no longer has.
	if r := c.cmd("RETR 1"); r != "-ERR [SYS/PERM] mailbox unavailable" {
		t.Errorf("RETR of a vanished message: %q", r)
	}
	if got := c.multi("RETR 2"); got != msg2 {
		t.Errorf("RETR 2: %q", got)
	}
}

func TestServerCloseEndsSessionsWithErrAndDeletesNothing(t *testing.T) {
	ts := startWithMessages(t)
	ts.be.addAccount("bob@example.test", "pw")
	in := dial(t, ts.addr)
	in.login(alice, alicePW)
	in.ok("DELE 1")
	out := dial(t, ts.addr)
	out.ok("USER bob@example.test")

	closed := make(chan struct{})
	go func() {
		ts.Close()
		close(closed)
	}()
	for _, c := range []*client{in, out} {
		if r := c.line(); r != "-ERR [SYS/TEMP] "+textShutdown {
			t.Errorf("at Close: %q", r)
		}
		c.closed()
	}
	<-closed
	if calls := ts.be.deleteCalls(); len(calls) != 0 {
		t.Errorf("Delete called %v at Close", calls)
	}
	if ts.be.locked(alice) {
		t.Error("the lock is held after Close")
	}
	if ts.Sessions() != 0 {
		t.Errorf("%d sessions after Close", ts.Sessions())
	}
	// No new connections.
	if c, err := dialMaybe(ts.addr); err == nil {
		c.Close()
		t.Error("a connection was accepted after Close")
	}
}

func TestALostMaildropEndsTheSessionWithErr(t *testing.T) {
	ts := startWithMessages(t)
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	c.ok("DELE 1")
	c.ok("DELE 2")
	if !ts.be.lose(alice) {
		t.Fatal("no lock to lose")
	}
	// The owner changed: -ERR, and nothing a client was told +OK about
	// is lost (DELE's +OK promised nothing before QUIT).
	if r := c.line(); r != "-ERR [SYS/TEMP] "+textLost {
		t.Fatalf("after the maildrop was lost: %q", r)
	}
	c.closed()
	waitUnlocked(t, ts.be, alice)
	if calls := ts.be.deleteCalls(); len(calls) != 0 {
		t.Errorf("Delete called %v", calls)
	}
	// A reconnect works (the new owner has it).
	c = dial(t, ts.addr)
	if r := c.login(alice, alicePW); !strings.HasPrefix(r, "+OK maildrop has 2") {
		t.Errorf("after reconnecting: %q", r)
	}
}

func TestALostMaildropDuringQuitKeepsTheDeletionsAnswer(t *testing.T) {
	ts := startWithMessages(t)
	release := make(chan struct{})
	entered := make(chan struct{})
	ts.be.set(func(b *fakeBackend) {
		b.beforeDelete = func() {
			close(entered)
			<-release
		}
	})
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	c.ok("DELE 2")
	c.send("QUIT\r\n")
	<-entered
	ts.be.lose(alice)
	close(release)
	// The deletion was durable before the answer: +OK, then the end.
	if r := c.line(); !strings.Contains(r, "1 messages deleted") {
		t.Errorf("QUIT: %q", r)
	}
	c.closed()
	if ids := ts.be.ids(alice); !slices.Equal(ids, []string{"1"}) {
		t.Errorf("maildrop %v", ids)
	}
}

func TestCloseWaitsForAQuitInProgress(t *testing.T) {
	ts := startWithMessages(t)
	release := make(chan struct{})
	entered := make(chan struct{})
	ts.be.set(func(b *fakeBackend) {
		b.beforeDelete = func() {
			close(entered)
			<-release
		}
	})
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	c.ok("DELE 1")
	c.send("QUIT\r\n")
	<-entered
	closed := make(chan struct{})
	go func() {
		ts.Close()
		close(closed)
	}()
	wait.Never(t, 50*time.Millisecond, func() bool {
		select {
		case <-closed:
			return true
		default:
			return false
		}
	}, "Close returned while a QUIT's deletion was in progress")
	close(release)
	if r := c.line(); !strings.Contains(r, "1 messages deleted") {
		t.Errorf("QUIT during Close: %q", r)
	}
	<-closed
}
