package actors

import (
	"container/list"

	"github.com/asynkron/protoactor-go/actor"
)

// The bound on active account actors.
//
// An account actor stays active for Config.AccountIdle after its last
// message (its folder views, its cache of message sizes and the rules it
// compiled stay with it). With many accounts each getting a little mail
// their number grows with the accounts: 100,000 accounts with one message
// each kept 100,000 actors for the two idle minutes (`make bench-scale`;
// how much of that run's 542 MB of anonymous RSS they took was not
// measured: most of a busy node's heap is badger's). So each partition
// keeps at most its share of Config.MaxAccountActors
// active: an activation beyond it asks the least recently used actor to
// passivate now. The actor agrees only if nothing of it must outlive the
// request (passivateIdle below); one that is watched (an IMAP session's
// IDLE or selected folder, a POP3 lock) or still finishing work says no
// and leaves the count until its next message (passivateRefused).
// Activating an account again reads its record (a badger point read); its deliveries, which wait in
// the partition while it stops, are not lost (partition.go's pending).

// DefaultMaxAccountActors is Config.MaxAccountActors when unset.
//
// Every active actor is memory the garbage collector marks again on each
// cycle (protoactor's context, mailbox queues, timer and registry entry;
// the account record; its caches): at 100,000 accounts under load a
// cycle took 103 ms of CPU with 8,192 active actors and 43 ms with 1,024
// (GODEBUG=gctrace=1, 50,000 messages at ~2,400/s, a cycle every ~0.3 s).
// 1,024 delivered 5.5% faster than 8,192 there (median of 3 interleaved
// rounds, 2,356 vs 2,233 msg/s; 2,048: 2,303) with 30 MB less RSS, and it
// leaves each of the 16 partitions 64, well above the ~45 the busiest
// partition gets of 500 accounts (make bench), so a working set of that
// size never thrashes. A reactivation reads the account record again;
// the mailbox model may still be in storage's own cache (modelcache.go).
const DefaultMaxAccountActors = 1024

// minActorsPerPartition is the least a partition keeps active, whatever
// the node's bound.
const minActorsPerPartition = 16

// passivateIdle asks an account actor to passivate now if it can.
type passivateIdle struct{}

// passivateRefused is an account actor's answer when it cannot: it leaves
// the order (and the count) until its next message, so that the next
// activations ask others; otherwise a few watched actors at the front
// would take every request and the bound would not hold.
type passivateRefused struct {
	account string
	pid     *actor.PID
}

// refused takes an actor that said no out of the order.
func (p *partitionActor) refused(m *passivateRefused) {
	if c, ok := p.children[m.account]; ok && c.pid.Equal(m.pid) && !c.stopping {
		p.untrack(c)
	}
}

// actorLimit is this partition's share of the bound; 0: no bound.
func (p *partitionActor) actorLimit() int {
	if p.cfg.MaxAccountActors < 0 {
		return 0
	}
	return max(p.cfg.MaxAccountActors/max(p.cfg.Partitions, 1), minActorsPerPartition)
}

// touch marks c as the most recently used (putting it back in the order
// if it had refused).
func (p *partitionActor) touch(c *accountChild) {
	if c.stopping {
		return
	}
	if p.lru == nil {
		p.lru = list.New()
	}
	if c.lru != nil {
		p.lru.MoveToBack(c.lru)
		return
	}
	c.lru = p.lru.PushBack(c)
}

// untrack takes c out of the LRU order (it is stopping or gone).
func (p *partitionActor) untrack(c *accountChild) {
	if c.lru != nil {
		p.lru.Remove(c.lru)
		c.lru = nil
	}
}

// markStopping records that c's actor was told to stop.
func (p *partitionActor) markStopping(c *accountChild) {
	c.stopping = true
	p.untrack(c)
}

// enforceLimit asks the least recently used actor to passivate when the
// partition has more in the order than its share (the one asked goes to
// the back: its answer comes later).
func (p *partitionActor) enforceLimit(ctx actor.Context) {
	limit := p.actorLimit()
	if limit == 0 || p.lru == nil || p.lru.Len() <= limit {
		return
	}
	e := p.lru.Front()
	c := e.Value.(*accountChild)
	p.lru.MoveToBack(e)
	p.stats.Evictions.Add(1)
	ctx.Send(c.pid, &passivateIdle{})
}

// mayPassivate reports whether the actor holds nothing that must outlive
// it: no body being staged, no generated message being submitted, no
// session watching, no POP3 lock.
func (a *accountActor) mayPassivate() bool {
	return a.staging == 0 && len(a.busy) == 0 && !a.watched()
}
