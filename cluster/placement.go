package cluster

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
)

// ErrNoOwner is wrapped by PartitionPID when a partition has no owner now.
var ErrNoOwner = mail.TemporaryError("partition has no owner")

// Placement decides which backend owns each account partition and tells
// where its actor lives. It satisfies actors.Placement.
//
// Ownership is Homing's own, not protoactor's (design.md): every node
// computes the same assignment from the same membership view, and where
// views disagree for a while (two nodes both believing they own a
// partition), the storage layer's directory lock lets only one of them open
// the partition's data; the other answers "temporarily unavailable" until
// the views converge.
//
// Dynamic mode: a partition's owner is the live backend with the highest
// rendezvous score (highest random weight hashing) for it, so when a
// backend joins or leaves only the partitions it gains or loses move.
// Static mode: a backend that advertises a partition set (Meta.Static)
// owns those of them that the rules of static.go give it: of two live
// claimants of one partition only one opens it.
//
// Safe for concurrent use.
type Placement struct {
	partitions int
	self       string
	// local returns the PID of the local actor of a partition, or nil.
	local func(int) *actor.PID

	mu      sync.RWMutex
	owners  []string          // by partition; "" = none
	channel map[string]string // member name -> cluster channel address
	// watch holds, by partition, the channel OwnerChanged handed out;
	// Update closes it when the partition's owner changes.
	watch map[int]chan struct{}
}

// OwnerChanged returns a channel that is closed the next time the owner
// of partition p changes (to another member, to none, or from none).
// Requests to a partition's owner use it to give up on an owner that is
// gone and ask the next one at once, instead of waiting for their
// timeout.
func (pl *Placement) OwnerChanged(p int) <-chan struct{} {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.watch == nil {
		pl.watch = map[int]chan struct{}{}
	}
	ch := pl.watch[p]
	if ch == nil {
		ch = make(chan struct{})
		pl.watch[p] = ch
	}
	return ch
}

// NewPlacement returns a placement for a cluster of the given partition
// count, seen from the node named self.
func NewPlacement(partitions int, self string, local func(int) *actor.PID) *Placement {
	return &Placement{partitions: partitions, self: self, local: local,
		owners: make([]string, partitions), channel: map[string]string{}}
}

// Update recomputes the owners from members and returns the partitions
// this node owns.
func (pl *Placement) Update(members []Member) []int {
	owners := Assign(pl.partitions, members)
	channel := map[string]string{}
	for _, m := range members {
		channel[m.Name] = m.Meta.Channel
	}
	var owned []int
	for p, o := range owners {
		if o == pl.self {
			owned = append(owned, p)
		}
	}
	pl.mu.Lock()
	for p, ch := range pl.watch {
		if p < len(owners) && p < len(pl.owners) && owners[p] != pl.owners[p] {
			close(ch)
			delete(pl.watch, p)
		}
	}
	pl.owners, pl.channel = owners, channel
	pl.mu.Unlock()
	return owned
}

// Owners returns the owner of every partition ("" = none).
func (pl *Placement) Owners() []string {
	pl.mu.RLock()
	defer pl.mu.RUnlock()
	return append([]string(nil), pl.owners...)
}

// Owner returns the owner of partition p ("" = none).
func (pl *Placement) Owner(p int) string {
	pl.mu.RLock()
	defer pl.mu.RUnlock()
	if p < 0 || p >= len(pl.owners) {
		return ""
	}
	return pl.owners[p]
}

// PartitionPID implements actors.Placement: the local actor when this node
// owns p, else the actor named partition-p on the owner's channel address.
func (pl *Placement) PartitionPID(p int) (*actor.PID, error) {
	if pid := pl.local(p); pid != nil {
		return pid, nil
	}
	pl.mu.RLock()
	defer pl.mu.RUnlock()
	if p < 0 || p >= len(pl.owners) {
		return nil, fmt.Errorf("partition %d out of range", p)
	}
	owner := pl.owners[p]
	addr := pl.channel[owner]
	if owner == "" || addr == "" || owner == pl.self {
		return nil, fmt.Errorf("%w: partition %d (handoff or no backend alive)", ErrNoOwner, p)
	}
	return actor.NewPID(addr, fmt.Sprintf("partition-%d", p)), nil
}

// Assign computes the owner of every partition from a membership view: for
// a partition some backend claims statically, the claimant the rules of
// static.go give it (or none); else a live dynamic backend chosen by
// rendezvous hashing with bounded load: every
// (partition, backend) pair gets a score, pairs are taken from the highest
// score down, and a backend takes at most ceil(P/N) partitions. Plain
// rendezvous hashing spread 16 partitions 5/11 over two backends; the bound
// keeps the spread even while a join or a leave still moves only a few
// partitions. Pure and deterministic: every node with the same view gets
// the same answer, whatever the order of members.
func Assign(partitions int, members []Member) []string {
	owners := make([]string, partitions)
	var dynamic []string
	for _, m := range members {
		if m.Meta.HasRole(mail.RoleBackend) && m.State.Live() && m.Meta.Static == "" {
			dynamic = append(dynamic, m.Name)
		}
	}
	sv := newStaticView(partitions, members)
	sort.Strings(dynamic)
	var free []int
	for p := range owners {
		if !sv.static(p) {
			free = append(free, p)
			continue
		}
		owners[p] = sv.owner(p) // static.go
	}
	if len(dynamic) == 0 || len(free) == 0 {
		return owners
	}
	type pair struct {
		p     int
		name  string
		score uint64
	}
	pairs := make([]pair, 0, len(free)*len(dynamic))
	for _, p := range free {
		for _, name := range dynamic {
			pairs = append(pairs, pair{p, name, score(p, name)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].score != pairs[j].score {
			return pairs[i].score > pairs[j].score
		}
		if pairs[i].p != pairs[j].p {
			return pairs[i].p < pairs[j].p
		}
		return pairs[i].name < pairs[j].name
	})
	limit := (len(free) + len(dynamic) - 1) / len(dynamic)
	load := map[string]int{}
	left := len(free)
	for _, pr := range pairs {
		if left == 0 {
			break
		}
		if owners[pr.p] != "" || load[pr.name] >= limit {
			continue
		}
		owners[pr.p] = pr.name
		load[pr.name]++
		left--
	}
	return owners
}

// score is the rendezvous weight of node name for partition p.
func score(p int, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(p)))
	// fnv's low bits mix poorly for short inputs; finish with splitmix64.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
