package actors

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/wait"
)

// With more accounts getting mail than the bound on active actors, the
// partition keeps about its share active (the least recently used
// passivate early), every delivery is stored once, an account whose actor
// passivated early is activated again for its next message, and an actor
// that holds a POP3 lock is never asked away from it.
func TestActiveAccountActorsAreBounded(t *testing.T) {
	store, err := storage.NewAccountStore(t.TempDir(), 1, storage.Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	cfg := testConfig()
	cfg.AccountIdle = time.Hour // only the bound passivates here
	cfg.MaxAccountActors = 20
	s := startSystem(t, cfg, Deps{OpenPartition: func(id int) (PartitionData, error) { return store.Open(id) }})
	ctx, root, pid := testCtx(t), s.ActorSystem().Root, s.LocalPartition(0)
	const accounts = 120
	addr := func(i int) string { return fmt.Sprintf("user%03d@example.test", i) }
	for i := 0; i < accounts; i++ {
		if _, err := s.CreateAccount(ctx, addr(i), "", 0); err != nil {
			t.Fatal(err)
		}
	}
	lock := func(id string) error {
		_, err := s.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_LOCK, Account: addr(0),
			WatcherAddress: "fe:1", WatcherId: id, LeaseMillis: time.Hour.Milliseconds()})
		return err
	}
	if err := lock("$1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < accounts; i++ {
		q := fmt.Sprintf("Q%03d", i)
		if r := only(t, deliver(t, root, pid, deliverMsg(q, addr(i), addr(i), testBody("to "+addr(i))))); r.GetCode() != 250 {
			t.Fatalf("delivery %d = %v, want 250", i, r)
		}
	}
	active := func() int {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st := s.PartitionStates(c)
		if len(st) != 1 || !st[0].Open {
			t.Fatalf("PartitionStates = %+v, want one partition", st)
		}
		return st[0].ActiveAccounts
	}
	// Each activation beyond the bound asks one actor; the last asked stop
	// a moment after their deliveries were answered. The lock holder
	// refuses and is not counted.
	wait.For(t, waitTimeout, func() bool { return active() <= cfg.MaxAccountActors+1 },
		"at most %d account actors active (the bound and the lock holder)", cfg.MaxAccountActors+1)
	if got := s.Stats().Evictions.Load(); got < accounts-int64(cfg.MaxAccountActors) {
		t.Errorf("%d actors asked to passivate early, want at least %d", got, accounts-cfg.MaxAccountActors)
	}
	// The lock holder was never let go: a second session is still refused.
	if err := lock("$2"); !errors.Is(err, mail.ErrExists) {
		t.Fatalf("a second POP3 lock on the account whose actor holds one = %v, want ErrExists", err)
	}
	// An early-passivated account takes its next message.
	if r := only(t, deliver(t, root, pid, deliverMsg("Q-again", addr(1), addr(1), testBody("again")))); r.GetCode() != 250 {
		t.Fatalf("second delivery to %s = %v, want 250", addr(1), r)
	}
	for i := 0; i < accounts; i++ {
		want := 1
		if i == 1 {
			want = 2
		}
		ms, err := s.Messages(ctx, addr(i), "INBOX")
		if err != nil || len(ms) != want {
			t.Fatalf("%s holds %d messages (%v), want %d", addr(i), len(ms), err, want)
		}
	}
}
