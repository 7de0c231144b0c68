package actors

import (
	"testing"
	"time"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/wait"
)

// A partition nobody needs closes its data once its account actors have
// passivated and PartitionIdle has passed; it still counts as open (this
// node's), and the next delivery opens the data again and is stored.
func TestIdlePartitionClosesItsDataAndOpensItForTheNextRequest(t *testing.T) {
	const ann = "ann@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	cfg := testConfig()
	cfg.AccountIdle = 50 * time.Millisecond
	cfg.PartitionIdle = 100 * time.Millisecond
	s := startSystem(t, cfg, Deps{OpenPartition: openFake(part)})
	pid, root, ctx := s.LocalPartition(0), s.ActorSystem().Root, testCtx(t)

	if r := only(t, deliver(t, root, pid, deliverMsg("Q1", ann, ann, testBody("first")))); r.GetCode() != 250 {
		t.Fatalf("first delivery = %v, want 250", r)
	}
	wait.For(t, waitTimeout, func() bool { return part.Closed() == 1 }, "the idle partition closes its data")
	st := s.PartitionStates(ctx)
	if len(st) != 1 || !st[0].Open || !st[0].Idle || st[0].ActiveAccounts != 0 {
		t.Fatalf("PartitionStates = %+v, want partition 0 open, idle, no account active", st)
	}

	if r := only(t, deliver(t, root, pid, deliverMsg("Q2", ann, ann, testBody("second")))); r.GetCode() != 250 {
		t.Fatalf("delivery to the idle partition = %v, want 250", r)
	}
	if n := len(part.Stored(ann)); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}
	if st := s.PartitionStates(ctx); len(st) != 1 || !st[0].Open || st[0].Idle {
		t.Errorf("PartitionStates after the delivery = %+v, want open and not idle", st)
	}
	if part.Closed() != 1 {
		t.Errorf("data closed %d times, want 1", part.Closed())
	}
}

// While an account actor is active (a session, a delivery in progress) the
// data stays open, however long ago the last request was.
func TestPartitionWithAnActiveAccountStaysOpen(t *testing.T) {
	const ann = "ann@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	cfg := testConfig()
	cfg.AccountIdle = time.Hour
	cfg.PartitionIdle = 20 * time.Millisecond
	s := startSystem(t, cfg, Deps{OpenPartition: openFake(part)})
	pid, root, ctx := s.LocalPartition(0), s.ActorSystem().Root, testCtx(t)
	if r := only(t, deliver(t, root, pid, deliverMsg("Q1", ann, ann, testBody("first")))); r.GetCode() != 250 {
		t.Fatalf("delivery = %v, want 250", r)
	}
	// The partition looks again every PartitionIdle while the account is
	// active: several looks, and the data stays open.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if part.Closed() != 0 {
			t.Fatalf("data closed while an account actor is active")
		}
		st := s.PartitionStates(ctx)
		if len(st) != 1 || st[0].Idle || st[0].ActiveAccounts != 1 {
			t.Fatalf("PartitionStates = %+v, want open with one active account", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
