package actors

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// warmDispatcher runs actor mailboxes on goroutines that stay after their
// turn, so that the next mailbox to run reuses a stack that has already
// grown. protoactor's default dispatcher starts a new goroutine for every
// mailbox that goes from empty to busy; an account actor's store path
// (summary, badger's write) is deep, so each such goroutine grew its stack
// several times: runtime.newstack/copystack was 10% of a backend's CPU
// under load (CPU profile of `homing dev` at 1,830 msg/s, 2026-12-03).
//
// Schedule never waits: it hands the mailbox to an idle worker when one is
// parked, starts a new worker while there are fewer than max, and otherwise
// falls back to a goroutine of its own (protoactor's behaviour), so an
// actor that blocks in Receive cannot starve the others. A worker with
// nothing to do for idle ends; stop ends the parked ones at once and the
// busy ones after their turn (a mailbox scheduled after stop still runs,
// on a goroutine of its own).
type warmDispatcher struct {
	throughput int
	max        int32
	idle       time.Duration

	work    chan func() // unbuffered: a send succeeds only to a parked worker
	quit    chan struct{}
	once    sync.Once
	workers atomic.Int32 // running or parked
	parked  atomic.Int32 // waiting for a mailbox
}

var _ actor.Dispatcher = (*warmDispatcher)(nil)

// A node's warm dispatcher: at most warmWorkers goroutines, each kept
// warmIdle after its last turn; a turn handles up to mailboxThroughput
// messages (protoactor's default) before it yields the processor. 64
// covers the busy mailboxes of a loaded node (a partition actor, the
// account actors storing at once, the queue) several times over.
const (
	warmWorkers       = 64
	warmIdle          = 2 * time.Second
	mailboxThroughput = 300
)

// newWarmDispatcher returns a dispatcher with at most max workers; each
// mailbox turn handles up to throughput messages (protoactor's default is
// 300) before it yields the processor.
func newWarmDispatcher(max int, idle time.Duration, throughput int) *warmDispatcher {
	return &warmDispatcher{throughput: throughput, max: int32(max), idle: idle,
		work: make(chan func()), quit: make(chan struct{})}
}

// Throughput implements actor.Dispatcher.
func (d *warmDispatcher) Throughput() int { return d.throughput }

// Schedule implements actor.Dispatcher.
func (d *warmDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
		return
	default:
	}
	if d.workers.Add(1) <= d.max {
		go d.worker(fn)
		return
	}
	d.workers.Add(-1)
	go fn()
}

func (d *warmDispatcher) worker(fn func()) {
	defer d.workers.Add(-1)
	t := time.NewTimer(d.idle)
	defer t.Stop()
	for {
		fn()
		t.Reset(d.idle)
		d.parked.Add(1)
		select {
		case fn = <-d.work:
			d.parked.Add(-1)
		case <-t.C:
			d.parked.Add(-1)
			return
		case <-d.quit:
			d.parked.Add(-1)
			return
		}
	}
}

// stop ends the parked workers at once and the busy ones when their turn
// is over. It does not wait: a mailbox blocked in Receive must not hold up
// the node's stop. Workers started after stop end after their first turn.
func (d *warmDispatcher) stop() {
	d.once.Do(func() { close(d.quit) })
}
