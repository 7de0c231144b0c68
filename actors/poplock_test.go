package actors

import (
	"errors"
	"testing"
	"time"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/clock"
)

// startMailboxSystem is a single node's System on a real account store
// (mailbox operations need folders), with the clock c.
func startMailboxSystem(t *testing.T, c *clock.Clock) (*System, string) {
	t.Helper()
	store, err := storage.NewAccountStore(t.TempDir(), 1, storage.Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	s := startSystem(t, testConfig(), Deps{Now: c.Now,
		OpenPartition: func(id int) (PartitionData, error) { return store.Open(id) }})
	const acct = "ann@example.test"
	if _, err := s.CreateAccount(testCtx(t), acct, "", 0); err != nil {
		t.Fatal(err)
	}
	return s, acct
}

// The POP3 maildrop lock is one session's lease at the account actor: a
// second holder is refused (mail.ErrExists) while it holds; the holder
// renews it; a lease not renewed runs out and another session takes it;
// UNLOCK frees it at once. Two sessions whose watcher ids are equal but
// whose nodes differ are two holders.
func TestPOP3LockIsALease(t *testing.T) {
	c := clock.New(time.Time{})
	s, acct := startMailboxSystem(t, c)
	lock := func(node, id string, lease time.Duration) error {
		_, err := s.Mailbox(testCtx(t), &pb.MailboxOp{Kind: pb.MailboxOp_LOCK, Account: acct,
			WatcherAddress: node, WatcherId: id, LeaseMillis: lease.Milliseconds()})
		return err
	}
	unlock := func(node, id string) {
		if _, err := s.Mailbox(testCtx(t), &pb.MailboxOp{Kind: pb.MailboxOp_UNLOCK, Account: acct, WatcherAddress: node, WatcherId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := lock("fe:1", "$5", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := lock("be:1", "$5", 10*time.Second); !errors.Is(err, mail.ErrExists) {
		t.Fatalf("another node's session with the same watcher id: %v, want ErrExists", err)
	}
	c.Advance(8 * time.Second)
	if err := lock("fe:1", "$5", 10*time.Second); err != nil {
		t.Fatalf("the holder renews: %v", err)
	}
	c.Advance(8 * time.Second) // 16 s after the first lock, 8 after the renewal
	if err := lock("be:1", "$7", 10*time.Second); !errors.Is(err, mail.ErrExists) {
		t.Fatalf("within the renewed lease: %v, want ErrExists", err)
	}
	c.Advance(3 * time.Second) // the renewed lease ran out
	if err := lock("be:1", "$7", 10*time.Second); err != nil {
		t.Fatalf("after the holder's lease ran out: %v", err)
	}
	if err := lock("fe:1", "$5", 10*time.Second); !errors.Is(err, mail.ErrExists) {
		t.Fatalf("the old holder after losing the lease: %v, want ErrExists", err)
	}
	unlock("be:1", "$7")
	if err := lock("fe:1", "$5", 10*time.Second); err != nil {
		t.Fatalf("after UNLOCK: %v", err)
	}
	if err := lock("fe:1", "", 0); !errors.Is(err, mail.ErrInvalid) {
		t.Fatalf("a lock without a holder: %v, want ErrInvalid", err)
	}
}
