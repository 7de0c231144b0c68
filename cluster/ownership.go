package cluster

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/homing-mail/homing/mail"
)

// PartitionHost runs partition actors on this node. *actors.System
// satisfies it.
type PartitionHost interface {
	StartPartition(id int) error
	StopPartition(id int)
	StopAllPartitions()
	OwnedPartitions() []int
	// RetryLocal asks the queue to try again, now, the local recipients
	// that wait because the owner of one of these partitions could not be
	// reached (it changed, or came back).
	RetryLocal(partitions []int)
}

// Ownership keeps this node's partition actors in line with the placement:
// when membership changes it stops the partitions it no longer owns (each
// stop returns once the data is closed, so the next owner can open it) and
// starts the ones it now owns (their actors retry opening until the
// previous owner has let go). When this node learns that the cluster
// declared it dead, it closes every partition first, before anything else.
type Ownership struct {
	ms       *Membership
	pl       *Placement
	host     PartitionHost
	backend  bool
	log      *slog.Logger
	onChange func()

	stop chan struct{}
	done chan struct{}

	// last is what apply saw the previous time: the owner of each
	// partition and how each owner was then (its start time and state),
	// so that it can tell which partitions' owners changed or came back.
	last ownersSeen

	mu    sync.Mutex
	moves int

	// Static partitions wait until this node has met the cluster
	// (static.go): started is when following began, conflicts what was
	// last logged.
	started   time.Time
	settled   bool
	conflicts string
	minority  bool // the last apply found this node in a minority
}

// minorityMemory is how long a dead member still counts in the cluster's
// size for inMinority: a member that crashed for good stops counting
// after it.
const minorityMemory = 10 * time.Minute

// staticSettle is how long a static backend with seeds waits to meet
// another member before it opens its static partitions alone: opening
// them before it has seen an earlier claimant would let two backends
// open one partition for a moment.
const staticSettle = 10 * time.Second

// ownersSeen is the owner of each partition and a token of each owner's
// incarnation and state.
type ownersSeen struct {
	owners []string
	token  map[string]string
}

// RunOwnership starts following membership. host may be a frontend's
// actors (backend false): then only the queue is told about changes.
// onChange, if not nil, runs (in the ownership goroutine) after every
// change has been applied.
func RunOwnership(ms *Membership, pl *Placement, host PartitionHost, backend bool, log *slog.Logger, onChange func()) *Ownership {
	o := &Ownership{ms: ms, pl: pl, host: host, backend: backend, log: log, onChange: onChange,
		stop: make(chan struct{}), done: make(chan struct{}), started: time.Now()}
	o.apply()
	go o.run()
	return o
}

func (o *Ownership) run() {
	defer close(o.done)
	settle := time.NewTimer(staticSettle)
	defer settle.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-settle.C:
			o.apply()
		case <-o.ms.SelfDeclaredDead():
			if o.backend {
				o.log.Warn("this node was declared dead by the cluster: closing every partition")
				o.host.StopAllPartitions()
			}
			o.apply()
		case <-o.ms.Changed():
			o.apply()
		}
	}
}

// apply recomputes the placement and starts and stops partitions.
func (o *Ownership) apply() {
	members := o.ms.Members()
	owned := o.pl.Update(members)
	o.logConflicts(members)
	if o.backend {
		owned = o.holdStatic(members, owned)
		if o.inMinority(members) {
			owned = nil
		}
		have := o.host.OwnedPartitions()
		var lose, gain []int
		for _, p := range have {
			if !slices.Contains(owned, p) {
				lose = append(lose, p)
			}
		}
		for _, p := range owned {
			if !slices.Contains(have, p) {
				gain = append(gain, p)
			}
		}
		var wg sync.WaitGroup
		for _, p := range lose {
			wg.Add(1)
			go func() { defer wg.Done(); o.host.StopPartition(p) }()
		}
		wg.Wait()
		for _, p := range gain {
			if err := o.host.StartPartition(p); err != nil {
				o.log.Error("starting partition", "partition", p, "err", err)
			}
		}
		if len(lose)+len(gain) > 0 {
			o.mu.Lock()
			o.moves += len(lose) + len(gain)
			o.mu.Unlock()
			o.log.Info("partitions moved", "released", mail.FormatPartitionSet(lose), "taken", mail.FormatPartitionSet(gain),
				"owned", mail.FormatPartitionSet(owned))
		}
	}
	if changed := o.changedOwners(members); len(changed) > 0 {
		o.host.RetryLocal(changed)
	}
	if o.onChange != nil {
		o.onChange()
	}
}

// changedOwners returns the partitions whose owner is another than the last
// time, or the same member restarted (another start time) or back from
// being suspected: the mail waiting for those owners may go now. Mail
// waiting for anything else (a full mailbox, a disk) is not touched, so a
// membership change never makes it retry before its backoff.
func (o *Ownership) changedOwners(members []Member) []int {
	token := make(map[string]string, len(members))
	for _, m := range members {
		token[m.Name] = fmt.Sprintf("%d/%s", m.Meta.Started, m.State)
	}
	owners := o.pl.Owners()
	var changed []int
	for p, owner := range owners {
		if owner == "" {
			continue
		}
		if p >= len(o.last.owners) || o.last.owners[p] != owner || o.last.token[owner] != token[owner] {
			changed = append(changed, p)
		}
	}
	o.last = ownersSeen{owners: owners, token: token}
	return changed
}

// Moves counts partitions started or stopped here because of membership.
func (o *Ownership) Moves() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.moves
}

// Stop stops following membership (partitions stay as they are; the node
// stops them as it shuts down).
func (o *Ownership) Stop() {
	close(o.stop)
	<-o.done
}

// holdStatic leaves every partition out of owned until this node has met
// the cluster: it has no seeds, its join of the seeds succeeded (so its
// view has every member they knew), or staticSettle has passed. Alone, a backend's view has no other claimant: a static backend
// would open a partition an earlier one holds, a dynamic one would take a
// static partition whose owner it has not heard of yet, each in its own
// store.
func (o *Ownership) holdStatic(members []Member, owned []int) []int {
	if o.settled || len(o.ms.cfg.Join) == 0 {
		return owned
	}
	if o.ms.joined.Load() {
		o.settled = true
		return owned
	}
	if time.Since(o.started) >= staticSettle {
		o.settled = true
		o.log.Warn("no other member met: opening the partitions this node's view gives it", "owned", mail.FormatPartitionSet(owned))
		return owned
	}
	return nil
}

// logConflicts logs the static partitions claimed by more than one live
// member, once per change.
func (o *Ownership) logConflicts(members []Member) {
	cs := StaticConflicts(o.pl.partitions, members)
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%d:%s<%s;", c.Partition, c.Owner, strings.Join(c.Claimants, ","))
	}
	if b.String() == o.conflicts {
		return
	}
	o.conflicts = b.String()
	for _, c := range cs {
		if c.Owner == o.ms.LocalName() || slices.Contains(c.Claimants, o.ms.LocalName()) || !o.backend {
			owner := c.Owner
			if owner == "" {
				owner = "nobody (the member holding its data is not live)"
			}
			o.log.Error("static partition claimed by more than one live member: only its owner opens it; fix --static-partitions",
				"partition", c.Partition, "claimants", strings.Join(c.Claimants, ","), "owner", owner)
		}
	}
}

// inMinority reports whether this node sees fewer than a majority of the
// cluster alive: the members it knows that have not left (the dead ones of
// the last minorityMemory included), when there are at least three. A
// backend cut off from the others sees them all dead and would otherwise
// keep its partitions (and, in a dynamic cluster, try to take every other
// one) while the rest of the cluster gives them to another backend; in a
// minority it closes every partition instead, so the majority can open
// them. In a two-node cluster nobody else could take them: nothing
// changes.
func (o *Ownership) inMinority(members []Member) bool {
	total, live := 0, 0
	for _, m := range members {
		switch {
		case m.State.Live():
			total++
			live++
		case m.State == StateDead && time.Since(m.Since) < minorityMemory:
			total++
		}
	}
	minority := total >= 3 && 2*live <= total
	if minority != o.minority {
		o.minority = minority
		if minority {
			o.log.Error("this node sees a minority of the cluster alive (cut off?): closing every partition until it sees a majority again",
				"live", live, "members", total)
		} else {
			o.log.Info("a majority of the cluster is alive again: taking the partitions the placement gives this node", "live", live, "members", total)
		}
	}
	return minority
}
