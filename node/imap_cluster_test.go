package node_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// rawIMAP is an IMAP session read line by line, to see exactly what the
// server sends (an untagged BYE before the connection closes).
type rawIMAP struct {
	t     *testing.T
	c     net.Conn
	lines chan string
}

func dialRaw(t *testing.T, addr string) *rawIMAP {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawIMAP{t: t, c: c, lines: make(chan string, 1000)}
	go func() {
		defer close(r.lines)
		br := bufio.NewReader(c)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			r.lines <- strings.TrimRight(l, "\r\n")
		}
	}()
	r.expect(10*time.Second, "* OK")
	return r
}

func (r *rawIMAP) send(line string) {
	r.t.Helper()
	if _, err := fmt.Fprintf(r.c, "%s\r\n", line); err != nil {
		r.t.Fatal(err)
	}
}

// expect waits for a line starting with prefix and returns it; the lines
// before it are returned too.
func (r *rawIMAP) expect(d time.Duration, prefix string) (string, []string) {
	r.t.Helper()
	var seen []string
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				r.t.Fatalf("connection closed waiting for %q; got %q", prefix, seen)
			}
			if strings.HasPrefix(l, prefix) {
				return l, seen
			}
			seen = append(seen, l)
		case <-deadline:
			r.t.Fatalf("no %q within %v; got %q", prefix, d, seen)
		}
	}
}

// TestIMAPSessionsOnTwoNodesAndOwnerKilled: an account on one backend,
// read through the frontend (IDLE) and through the other backend. The
// frontend's IDLE sees a delivery within a second and the other session's
// APPEND and STORE; then the owner is killed -9: both sessions end with
// BYE, a reconnect to the surviving backend (the new owner) works, and
// every acknowledged APPEND and flag change is there.
func TestIMAPSessionsOnTwoNodesAndOwnerKilled(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	c.Add("fe", mail.RoleFrontend)
	c.Add("be1", mail.RoleBackend)
	c.Add("be2", mail.RoleBackend)
	c.WaitOwners(t, "be1", "be2")
	const acct, pass = "reader@example.test", "imap-cluster-pw-1"
	fe := c.Admin("fe")
	if _, err := fe.CreateAccount(ctx, admin.CreateAccount{Address: acct, Password: pass}); err != nil {
		t.Fatal(err)
	}
	rec, err := fe.Account(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	owner := rec.Owner
	other := map[string]string{"be1": "be2", "be2": "be1"}[owner]

	// Session A on the frontend, in IDLE.
	a := dialRaw(t, c.Process("fe").IMAP)
	a.send("a1 LOGIN " + acct + " " + pass)
	a.expect(10*time.Second, "a1 OK")
	a.send("a2 SELECT INBOX")
	a.expect(10*time.Second, "a2 OK")
	a.send("a3 IDLE")
	a.expect(10*time.Second, "+ ")

	// Session B on the backend that does not own the account.
	b, err := imapclient.DialInsecure(c.Process(other).IMAP, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Login(acct, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	// A delivery through the frontend: EXISTS in A's IDLE within 1 s.
	msg := testkit.Message("s@remote.test", acct, "delivered", "hello")
	if _, err := testkit.Send(c.SMTPAddr("fe"), "s@remote.test", []string{acct}, msg); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	a.expect(5*time.Second, "* 1 EXISTS")
	if d := time.Since(sent); d > time.Second {
		t.Errorf("EXISTS %v after the delivery was accepted, want within 1 s", d)
	} else {
		t.Logf("EXISTS on the frontend %v after the 250", d)
	}

	// B appends and flags: A sees both.
	raw := "Subject: appended on " + other + "\r\n\r\nbody\r\n"
	ap := b.Append("INBOX", int64(len(raw)), nil)
	_, _ = ap.Write([]byte(raw))
	_ = ap.Close()
	ad, err := ap.Wait()
	if err != nil {
		t.Fatal(err)
	}
	a.expect(5*time.Second, "* 2 EXISTS")
	if err := b.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := b.Store(imap.UIDSetNum(ad.UID), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if l, _ := a.expect(5*time.Second, "* 2 FETCH"); !strings.Contains(l, `\Flagged`) {
		t.Fatalf("A's FETCH after B's STORE: %q", l)
	}

	// The owner dies: both sessions end with BYE.
	c.Kill(owner)
	a.expect(15*time.Second, "* BYE")
	select {
	case <-b.Closed():
	case <-time.After(15 * time.Second):
		t.Fatal("the session on the new owner did not end after the owner changed")
	}

	// A reconnect works once the new owner has the partition.
	c.WaitOwners(t, other)
	var r *imapclient.Client
	wait.For(t, 20*time.Second, func() bool {
		var err error
		if r, err = imapclient.DialInsecure(c.Process("fe").IMAP, nil); err != nil {
			return false
		}
		if err := r.Login(acct, pass).Wait(); err != nil {
			r.Close()
			return false
		}
		if _, err := r.Select("INBOX", nil).Wait(); err != nil {
			r.Close()
			return false
		}
		return true
	}, "no IMAP session through the frontend after the owner died")
	defer r.Close()
	msgs, err := r.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("after the owner died: %d messages, %v", len(msgs), err)
	}
	if msgs[1].UID != ad.UID || len(msgs[1].Flags) != 1 || msgs[1].Flags[0] != imap.FlagFlagged {
		t.Fatalf("the appended message after the owner died: UID %d flags %v, want UID %d \\Flagged", msgs[1].UID, msgs[1].Flags, ad.UID)
	}
}
