package actors

import (
	"time"
)

// An idle partition closes its data. Each open badger database runs its
// compactors on a 50 ms ticker whether or not anything is written (badger
// v4 levels.go, runCompactor): with a node's 16 partitions, the queue and
// the journal that was ~3-5% of a core on a node doing nothing. A
// partition whose account actors have all passivated and that no request
// has needed for Config.PartitionIdle closes its data (releasing the
// directory lock; the fencing epoch stays on disk); it is still this
// node's partition, and the next request that needs it opens it again
// (a new epoch, as every open): 10-16 ms for a partition of 2,000
// messages on the 2-core test machine.

// closeIfIdle is the partition actor's own timer: look whether the data
// has been idle long enough.
type closeIfIdle struct{}

// used records a request that needs the data.
func (p *partitionActor) used() { p.lastUse = p.now() }

// armIdle starts the idle timer for the open data.
func (p *partitionActor) armIdle() {
	if p.cfg.PartitionIdle <= 0 || p.root == nil {
		return
	}
	p.lastUse = p.now()
	p.scheduleIdle(p.cfg.PartitionIdle)
}

func (p *partitionActor) scheduleIdle(d time.Duration) {
	if p.idleCheck != nil {
		p.idleCheck.Stop()
	}
	root, self := p.root, p.self
	p.idleCheck = time.AfterFunc(d, func() { root.Send(self, &closeIfIdle{}) })
}

// closeIfIdle closes the data when no account actor is active and no
// request has needed it for PartitionIdle; otherwise it looks again when
// that could first be so.
func (p *partitionActor) closeIfIdle() {
	p.idleCheck = nil
	if p.data == nil || p.lost != nil || p.retiring || p.cfg.PartitionIdle <= 0 {
		return
	}
	wait := p.cfg.PartitionIdle - p.now().Sub(p.lastUse)
	if len(p.children) > 0 && wait <= 0 {
		// Account actors passivate after AccountIdle; look again then.
		wait = p.cfg.PartitionIdle
	}
	if wait > 0 {
		p.scheduleIdle(wait)
		return
	}
	p.stopWatch()
	if err := p.data.Close(); err != nil {
		// Close commits what was submitted; a failure here is the data's
		// own (a sync error): the next open finds out, as after a crash.
		p.log.Warn("closing the idle partition", "err", err)
	}
	p.data, p.idleClosed = nil, true
	p.log.Debug("partition idle: data closed until the next request")
	if p.changed != nil {
		p.changed(p.id, false)
	}
}
