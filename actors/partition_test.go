package actors

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/probe"
	"github.com/homing-mail/homing/testkit/wait"
)

// While another process still holds a partition's data (a handoff), its
// actor answers deliveries as temporarily unavailable and keeps trying to
// open the data by itself; once it can, deliveries are stored.
func TestPartitionRetriesOpenWhileLocked(t *testing.T) {
	const ann = "ann@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	var locked atomic.Bool
	var opens atomic.Int32
	locked.Store(true)
	open := func(id int) (PartitionData, error) {
		opens.Add(1)
		if locked.Load() {
			return nil, fmt.Errorf("partition %d: %w", id, storage.ErrLocked)
		}
		return part, nil
	}
	s := startSystem(t, testConfig(), Deps{OpenPartition: open})
	pid, root, ctx := s.LocalPartition(0), s.ActorSystem().Root, testCtx(t)

	r := only(t, deliver(t, root, pid, deliverMsg("Q1", ann, ann, testBody("locked"))))
	// A handoff: 4.4.3, which the frontend retries within LocalRetry (a
	// 4.3.0 would wait for the ordinary backoff).
	if r.GetCode() != 451 || r.GetStatus() != string(mail.StatusDirectoryFailure) {
		t.Errorf("delivery to a partition held elsewhere = %v, want 451 4.4.3", r)
	}
	if st := s.PartitionStates(ctx); len(st) != 1 || st[0].Open {
		t.Errorf("PartitionStates = %+v, want partition 0 not open", st)
	}
	tries := opens.Load()
	wait.For(t, waitTimeout, func() bool { return opens.Load() > tries }, "the partition actor tries again by itself")

	locked.Store(false) // the previous owner let go
	wait.For(t, waitTimeout, func() bool {
		st := s.PartitionStates(ctx)
		return len(st) == 1 && st[0].Open
	}, "the partition opens without a request asking for it")
	if r := only(t, deliver(t, root, pid, deliverMsg("Q1", ann, ann, testBody("open")))); r.GetCode() != 250 {
		t.Errorf("delivery once open = %v, want 250", r)
	}
	if n := len(part.Stored(ann)); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

// A partition that is retiring (its owner is handing it over) takes no
// more mail: it says retired once its account actors are gone, and then
// answers every recipient of a Deliver 451 4.4.3 "moving", storing
// nothing and activating no account actor, so that the queue tries again
// at the next owner.
func TestRetiringPartitionAnswersEveryRecipientMoving(t *testing.T) {
	const ann, anna = "ann@example.test", "anna@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	stats := NewStats(nil)
	s := startSystem(t, testConfig(), Deps{OpenPartition: openFake(part), Stats: stats})
	partition, p := s.LocalPartition(0), probe.New(t, s.ActorSystem())

	// ann's account actor is active when the retire comes.
	p.Request(partition, deliverTo("Q1", testBody("before"), rcpt(1, ann, ann)))
	if r := resultsByKey(t, probe.Expect[*pb.DeliverResult](p, waitTimeout), "Q1", 1)[1]; r.GetCode() != 250 {
		t.Fatalf("delivery before the retire: %v, want 250", r)
	}

	p.Request(partition, &retire{})
	probe.Expect[*retired](p, waitTimeout)
	if n := stats.Active()[KindAccount]; n != 0 {
		t.Errorf("%d account actors alive when the partition says retired, want 0", n)
	}

	p.Request(partition, deliverTo("Q2", testBody("after"), rcpt(4, ann, ann), rcpt(9, anna, ann)))
	for key, r := range resultsByKey(t, probe.Expect[*pb.DeliverResult](p, waitTimeout), "Q2", 4, 9) {
		if r.GetCode() != 451 || r.GetStatus() != string(mail.StatusDirectoryFailure) || r.GetText() != "partition is moving to another node" {
			t.Errorf("recipient %d of a Deliver to a retiring partition: %v, want 451 4.4.3 partition is moving to another node", key, r)
		}
	}
	if got := part.Stored(ann); len(got) != 1 || got[0].DedupKey != "Q1/"+ann {
		t.Errorf("the mailbox holds %+v, want only the message delivered before the retire", got)
	}
	if n := stats.Activations.Load(); n != 1 {
		t.Errorf("Activations = %d, want 1: a Deliver to a retiring partition activates no account actor", n)
	}
}

// A partition whose data cannot be opened (a disk error, not another
// owner's lock) answers every recipient of a Deliver temporarily, 451
// 4.3.0, without activating an account actor: the queue keeps the
// message and tries again.
func TestPartitionThatCannotOpenItsDataAnswersTemporary(t *testing.T) {
	const ann, anna = "ann@example.test", "anna@example.test"
	open := func(id int) (PartitionData, error) {
		return nil, fmt.Errorf("open /data/p%04d/MANIFEST: input/output error", id)
	}
	stats := NewStats(nil)
	s := startSystem(t, testConfig(), Deps{OpenPartition: open, Stats: stats})
	partition, p := s.LocalPartition(0), probe.New(t, s.ActorSystem())

	p.Request(partition, deliverTo("Q1", testBody("unopened"), rcpt(2, ann, ann), rcpt(5, anna, ann)))
	for key, r := range resultsByKey(t, probe.Expect[*pb.DeliverResult](p, waitTimeout), "Q1", 2, 5) {
		if r.GetCode() != 451 || r.GetStatus() != string(mail.StatusLocalError) || r.GetText() != "mailbox temporarily unavailable" {
			t.Errorf("recipient %d of a Deliver to a partition that cannot open: %v, want 451 4.3.0 mailbox temporarily unavailable", key, r)
		}
	}
	if n := stats.Activations.Load(); n != 0 {
		t.Errorf("Activations = %d, want 0: there is no mailbox to write to", n)
	}
	if st := s.PartitionStates(testCtx(t)); len(st) != 1 || st[0].Open {
		t.Errorf("PartitionStates = %+v, want partition 0 not open", st)
	}
}
