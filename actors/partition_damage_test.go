package actors

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/tlog"
	"github.com/homing-mail/homing/testkit/wait"
)

// A partition whose data is damaged is reported (its status says why,
// the metrics count it) and answers deliveries as temporarily unavailable
// saying it is damaged, without trying to open the data on every request;
// the other partition delivers; once the damage is repaired, the retry
// timer opens it.
func TestDamagedPartitionIsReportedAndRetried(t *testing.T) {
	cfg := testConfig()
	cfg.Partitions = 2
	bob, ann := addressIn(0, 2), addressIn(1, 2)
	parts := []*actorstest.Partition{actorstest.NewPartition(0, storage.Account{Address: bob}), actorstest.NewPartition(1, storage.Account{Address: ann})}
	var repaired atomic.Bool
	var opens atomic.Int32
	open := func(id int) (PartitionData, error) {
		if id == 1 && !repaired.Load() {
			opens.Add(1)
			return nil, fmt.Errorf("storage: partition 1: storage: open /data/p0001: %w: table 000001.sst: slice bounds out of range", storage.ErrDamaged)
		}
		return parts[id], nil
	}
	reg := prometheus.NewRegistry()
	var lines tlog.Lines
	s := startSystem(t, cfg, Deps{OpenPartition: open, Stats: NewStats(reg), Logger: tlog.New(t, "actors", tlog.KeepIn(&lines))})
	root, ctx := s.ActorSystem().Root, testCtx(t)

	st := s.PartitionStates(ctx)
	if len(st) != 2 || !st[0].Open || st[0].Error != "" || st[1].Open || !st[1].Damaged || !strings.Contains(st[1].Error, "table 000001.sst") {
		t.Fatalf("PartitionStates = %+v, want partition 0 open and partition 1 damaged with its reason", st)
	}
	for i := range 10 {
		r := only(t, deliver(t, root, s.LocalPartition(1), deliverMsg(fmt.Sprint("Q", i), ann, ann, testBody("to a damaged partition"))))
		if r.GetCode() != 451 || r.GetText() != "mailbox temporarily unavailable: partition 1 is damaged" {
			t.Fatalf("delivery to the damaged partition = %v, want 451 saying it is damaged", r)
		}
	}
	if n := opens.Load(); n > 2 {
		t.Errorf("%d opens of the damaged partition for 10 deliveries, want the retry timer's only", n)
	}
	if r := only(t, deliver(t, root, s.LocalPartition(0), deliverMsg("QB", bob, bob, testBody("to the other partition")))); r.GetCode() != 250 {
		t.Fatalf("delivery to the undamaged partition = %v, want 250", r)
	}
	if got := metric(t, reg, "homing_partitions_failed"); got != 1 {
		t.Errorf("homing_partitions_failed = %v, want 1", got)
	}
	if got := metric(t, reg, "homing_partition_open_failures_total,partition=1,reason=damaged"); got < 1 {
		t.Errorf("homing_partition_open_failures_total{partition=1,reason=damaged} = %v", got)
	}
	if n := lines.Count("partition data damaged", "partition=1"); n != 1 {
		t.Errorf("the damage was logged %d times, want once:\n%s", n, lines.String())
	}

	repaired.Store(true)
	wait.For(t, waitTimeout, func() bool {
		st := s.PartitionStates(ctx)
		return len(st) == 2 && st[1].Open && st[1].Error == ""
	}, "the repaired partition opens by its retry timer")
	if got := metric(t, reg, "homing_partitions_failed"); got != 0 {
		t.Errorf("homing_partitions_failed = %v after the repair, want 0", got)
	}
	if r := only(t, deliver(t, root, s.LocalPartition(1), deliverMsg("Q9", ann, ann, testBody("repaired")))); r.GetCode() != 250 {
		t.Fatalf("delivery once repaired = %v, want 250", r)
	}
}

// addressIn returns an address of example.test in partition id of n.
func addressIn(id, n int) string {
	for i := 0; ; i++ {
		if a := fmt.Sprintf("user%d@example.test", i); mail.PartitionOf(a, n) == id {
			return a
		}
	}
}

// metric returns the value of the counter or gauge named key in reg
// ("name,label=value,..." with the labels in order), 0 when there is none.
func metric(t *testing.T, reg *prometheus.Registry, key string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "," + l.GetName() + "=" + l.GetValue()
			}
			if k != key {
				continue
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}
