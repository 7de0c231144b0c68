package actors

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
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
	if r.GetCode() != 451 || r.GetStatus() != string(mail.StatusLocalError) {
		t.Errorf("delivery to a partition held elsewhere = %v, want 451 4.3.0", r)
	}
	if st := s.PartitionStates(ctx); len(st) != 1 || st[0].Open {
		t.Errorf("PartitionStates = %+v, want partition 0 not open", st)
	}
	tries := opens.Load()
	eventually(t, func() bool { return opens.Load() > tries }, "the partition actor tries again by itself")

	locked.Store(false) // the previous owner let go
	eventually(t, func() bool {
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
