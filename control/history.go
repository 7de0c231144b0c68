package control

import (
	"sync"
	"time"

	"github.com/homing-mail/homing/admin"
)

// History keeps what this node did per minute for the last 24 hours:
// messages queued, recipients delivered, relayed, deferred and bounced,
// and the queue's depth at the end of each minute. Every viewer of the
// console reads the same minutes (GET /api/v1/history); they live in the
// node's memory, so a restart starts them again. A goroutine closes each
// minute at its end (Start, Stop); the current minute is read live. Safe
// for concurrent use.
type History struct {
	read func() Counters // the node's counters now
	now  func() time.Time

	mu      sync.Mutex
	minutes []admin.Minute // closed minutes, oldest first, at most admin.HistoryMinutes
	start   time.Time      // the current minute
	base    Counters       // the counters at its start

	stop chan struct{}
	done chan struct{}
}

// Counters are the node's totals History takes differences of.
type Counters struct {
	In, Delivered, Relayed, Deferred, Bounced int64
	Queue                                     int64 // the depth now
}

// NewHistory starts counting from now; read gives the counters, now the
// time (nil: time.Now).
func NewHistory(read func() Counters, now func() time.Time) *History {
	if now == nil {
		now = time.Now
	}
	h := &History{read: read, now: now}
	h.start, h.base = now().Truncate(time.Minute), read()
	return h
}

// Start closes each minute at its end, until Stop.
func (h *History) Start() {
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(h.done)
		for {
			next := h.now().Truncate(time.Minute).Add(time.Minute)
			t := time.NewTimer(time.Until(next))
			select {
			case <-h.stop:
				t.Stop()
				return
			case <-t.C:
				h.Roll()
			}
		}
	}()
}

// Stop ends the goroutine of Start.
func (h *History) Stop() {
	if h.stop != nil {
		close(h.stop)
		<-h.done
	}
}

// Roll closes the current minute when the clock has passed it (the
// goroutine of Start calls it; tests call it with a fake clock). Minutes
// without a roll in between (a stalled process) are attributed to the
// minute closed.
func (h *History) Roll() {
	now := h.now().Truncate(time.Minute)
	c := h.read()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !now.After(h.start) {
		return
	}
	h.minutes = append(h.minutes, minute(h.start, h.base, c))
	if n := len(h.minutes) - admin.HistoryMinutes; n > 0 {
		h.minutes = append(h.minutes[:0], h.minutes[n:]...)
	}
	h.start, h.base = now, c
}

func minute(t time.Time, base, c Counters) admin.Minute {
	return admin.Minute{Time: t.UTC(), In: c.In - base.In, Delivered: c.Delivered - base.Delivered, Relayed: c.Relayed - base.Relayed,
		Deferred: c.Deferred - base.Deferred, Bounced: c.Bounced - base.Bounced, Queue: c.Queue}
}

// Minutes returns the minutes of the last 24 hours, oldest first, the
// current one (so far) last.
func (h *History) Minutes() []admin.Minute {
	c := h.read()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]admin.Minute, 0, len(h.minutes)+1)
	out = append(out, h.minutes...)
	return append(out, minute(h.start, h.base, c))
}
