package control

import (
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
)

// Each minute holds what happened in it; the current one is read live;
// 24 hours are kept.
func TestHistoryMinutes(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)
	var c Counters
	h := NewHistory(func() Counters { return c }, func() time.Time { return now })
	c.In, c.Delivered, c.Queue = 5, 3, 2
	got := h.Minutes()
	if len(got) != 1 || got[0] != (admin.Minute{Time: now.Truncate(time.Minute), In: 5, Delivered: 3, Queue: 2}) {
		t.Fatalf("the current minute: %+v", got)
	}
	now = now.Add(time.Minute)
	h.Roll()
	c.In, c.Relayed, c.Deferred, c.Bounced, c.Queue = 7, 4, 1, 1, 0
	got = h.Minutes()
	want := []admin.Minute{
		{Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), In: 5, Delivered: 3, Queue: 2},
		{Time: time.Date(2026, 12, 1, 10, 1, 0, 0, time.UTC), In: 2, Relayed: 4, Deferred: 1, Bounced: 1},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("minutes %+v, want %+v", got, want)
	}
	h.Roll() // the same minute: nothing closes
	if len(h.Minutes()) != 2 {
		t.Fatal("a roll within the minute closed it")
	}
	for i := 0; i < admin.HistoryMinutes+10; i++ {
		now = now.Add(time.Minute)
		h.Roll()
	}
	got = h.Minutes()
	if len(got) != admin.HistoryMinutes+1 || !got[len(got)-1].Time.Equal(now.Truncate(time.Minute)) {
		t.Fatalf("%d minutes kept, the last at %v; want %d and the current one", len(got), got[len(got)-1].Time, admin.HistoryMinutes+1)
	}
}

// The goroutine closes minutes on its own and stops.
func TestHistoryStartStop(t *testing.T) {
	h := NewHistory(func() Counters { return Counters{} }, nil)
	h.Start()
	h.Stop()
}
