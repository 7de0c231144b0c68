package imap_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit/wait"
)

// TestAdminMailboxRoutesOnARealNode: the admin API's folders, flags, move
// and delete go through the account's owner, and an IMAP session of the
// account sees each change (FETCH FLAGS, EXPUNGE); the moved message keeps
// its id; a message or folder that is not there is a 404.
func TestAdminMailboxRoutesOnARealNode(t *testing.T) {
	const acct = "adm@example.test"
	n := startNode(t, acct)
	a := admin.NewClient("http://"+n.AdminAddr(), "")
	ctx := t.Context()
	deliver(t, n, acct, "first")
	deliver(t, n, acct, "second")
	var ms []admin.Message
	wait.For(t, 10*time.Second, func() bool {
		var err error
		ms, err = a.QueryMessages(ctx, acct, admin.MessageQuery{Folder: "INBOX"})
		return err == nil && len(ms) == 2
	}, "two deliveries in INBOX")
	first, second := ms[0].ID, ms[1].ID

	c, u := login(t, n.IMAPAddr(), acct)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	unseen := func(name string) int64 {
		t.Helper()
		fs, err := a.Folders(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Name == name {
				return f.Unseen
			}
		}
		t.Fatalf("no folder %s in %+v", name, fs)
		return 0
	}
	if got := unseen("INBOX"); got != 2 {
		t.Fatalf("INBOX unseen %d, want 2", got)
	}

	if err := a.FlagMessage(ctx, acct, first, []string{`\Seen`, `\Flagged`}, nil); err != nil {
		t.Fatal(err)
	}
	if got := unseen("INBOX"); got != 1 {
		t.Errorf("INBOX unseen %d after \\Seen, want 1", got)
	}
	// The owner's notice reaches the session's watcher on its own
	// goroutine, maybe after the admin call returned: a NOOP reports the
	// change once it has come (RFC 9051 §6.1.2), so NOOP until it does.
	noopUntil := func(ready func() bool, what string) {
		t.Helper()
		wait.For(t, 10*time.Second, func() bool {
			if err := c.Noop().Wait(); err != nil {
				t.Fatal(err)
			}
			return ready()
		}, "the IMAP session hears %s", what)
	}
	var heard *imapclient.FetchMessageData
	noopUntil(func() bool {
		select {
		case m := <-u.fetch:
			heard = m
			return true
		default:
			return false
		}
	}, "the admin's flag change")
	if heard.SeqNum != 1 {
		t.Errorf("the IMAP session heard FETCH for %d, want 1", heard.SeqNum)
	}
	got, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(got) != 1 || !slices.Contains(got[0].Flags, imap.FlagFlagged) || !slices.Contains(got[0].Flags, imap.FlagSeen) {
		t.Errorf("FETCH FLAGS after the admin's change: %+v, %v", got, err)
	}

	if err := a.MoveMessage(ctx, acct, second, "Archive"); err != nil {
		t.Fatal(err)
	}
	var expunged uint32
	noopUntil(func() bool {
		select {
		case expunged = <-u.expunge:
			return true
		default:
			return false
		}
	}, "the admin's move")
	if expunged != 2 {
		t.Errorf("EXPUNGE %d, want 2", expunged)
	}
	archived, err := a.QueryMessages(ctx, acct, admin.MessageQuery{Folder: "Archive"})
	if err != nil || len(archived) != 1 || archived[0].ID != second || archived[0].Subject != "second" {
		t.Fatalf("Archive after the move: %+v, %v (want message %s, its id kept)", archived, err, second)
	}

	if err := a.DeleteMessage(ctx, acct, first); err != nil {
		t.Fatal(err)
	}
	if left, err := a.QueryMessages(ctx, acct, admin.MessageQuery{Folder: "INBOX"}); err != nil || len(left) != 0 {
		t.Errorf("INBOX after the delete: %+v, %v", left, err)
	}
	for name, err := range map[string]error{
		"delete again":         a.DeleteMessage(ctx, acct, first),
		"move to no folder":    a.MoveMessage(ctx, acct, second, "Nowhere"),
		"flags of no message":  a.FlagMessage(ctx, acct, "999", []string{`\Seen`}, nil),
		"listing of no folder": func() error { _, err := a.QueryMessages(ctx, acct, admin.MessageQuery{Folder: "Nowhere"}); return err }(),
	} {
		var ae *admin.Error
		if !errors.As(err, &ae) || ae.Status != 404 {
			t.Errorf("%s: %v, want 404", name, err)
		}
	}
}
