package dkim

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/cluster"
)

// KeysActor is the name of the actor that hands out and takes a node's
// DKIM keys over the cluster channel (only members reach it: the channel
// is mutual TLS from the cluster secret).
const KeysActor = "dkim-keys"

// scope marks the keyring in the messages it shares with the cluster-wide
// rules' replication (pb.Rules, pb.GetRules): the same wire shape, a
// scope of its own.
const scope = "dkim"

// Members is what the replicator needs of the membership.
// *cluster.Membership satisfies it.
type Members interface {
	Members() []cluster.Member
}

// Replicator keeps every member's keyring the same: a change here is
// pushed to every live member, and after each membership change the
// keyrings of all live members are fetched and merged (a member that was
// down or cut off during a change gets it then). Merging is commutative
// and idempotent (Keyring.Merge), so every keyring converges to the union
// in any order. Like the cluster-wide rules' replication, but by content
// rather than by version: two nodes may add keys at once.
type Replicator struct {
	keys *Keyring
	log  *slog.Logger

	mu      sync.Mutex
	root    *actor.RootContext
	members Members
}

// NewReplicator returns the replicator of keys; it pushes every change
// of keys once Start and Join have run.
func NewReplicator(keys *Keyring, log *slog.Logger) *Replicator {
	r := &Replicator{keys: keys, log: log}
	keys.OnChange(r.push)
	return r
}

// Start spawns the keys actor on system (clustered nodes).
func (r *Replicator) Start(system *actor.ActorSystem) error {
	if _, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &keysActor{r: r}
	}), KeysActor); err != nil {
		return fmt.Errorf("dkim keys actor: %w", err)
	}
	r.mu.Lock()
	r.root = system.Root
	r.mu.Unlock()
	return nil
}

// Join makes changes reach members and starts following them.
func (r *Replicator) Join(m Members) {
	r.mu.Lock()
	r.members = m
	r.mu.Unlock()
}

func (r *Replicator) cluster() (*actor.RootContext, Members) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.root, r.members
}

func (r *Replicator) peers() []cluster.Member {
	_, ms := r.cluster()
	if ms == nil {
		return nil
	}
	var out []cluster.Member
	for _, m := range ms.Members() {
		if !m.Self && m.State == cluster.StateAlive && m.Meta.Channel != "" {
			out = append(out, m)
		}
	}
	return out
}

func (r *Replicator) encoded() []byte {
	b, _ := json.Marshal(r.keys.All())
	return b
}

// push sends this node's keyring to every live member (best effort).
func (r *Replicator) push() {
	root, _ := r.cluster()
	if root == nil {
		return
	}
	js := r.encoded()
	for _, m := range r.peers() {
		root.Send(actor.NewPID(m.Meta.Channel, KeysActor), &pb.Rules{Scope: scope, Json: js})
	}
}

// Sync fetches every live member's keyring and merges it here, each on a
// goroutine of its own; it returns at once. Called after membership
// changes.
func (r *Replicator) Sync() {
	root, _ := r.cluster()
	if root == nil {
		return
	}
	for _, m := range r.peers() {
		go func(m cluster.Member) {
			f := root.RequestFuture(actor.NewPID(m.Meta.Channel, KeysActor), &pb.GetRules{Scope: scope}, 5*time.Second)
			res, err := f.Result()
			rs, ok := res.(*pb.Rules)
			if err != nil || !ok {
				r.log.Debug("fetching a member's DKIM keys failed", "member", m.Name, "err", err)
				return
			}
			r.adopt(rs.Json, m.Name)
		}(m)
	}
}

// adopt merges a member's keyring.
func (r *Replicator) adopt(js []byte, from string) {
	var keys []Key
	if err := json.Unmarshal(js, &keys); err != nil {
		r.log.Warn("DKIM keys from a member refused", "member", from, "err", err)
		return
	}
	changed, err := r.keys.Merge(keys)
	if err != nil {
		r.log.Error("saving DKIM keys from a member failed", "member", from, "err", err)
		return
	}
	if changed {
		r.log.Info("DKIM keys learnt from a member", "member", from, "keys", len(r.keys.All()))
	}
}

// keysActor answers members: it hands out this node's keys and merges
// theirs.
type keysActor struct{ r *Replicator }

func (a *keysActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pb.GetRules:
		if m.Scope == scope {
			ctx.Respond(&pb.Rules{Scope: scope, Json: a.r.encoded()})
		}
	case *pb.Rules:
		if m.Scope == scope {
			from := ""
			if ctx.Sender() != nil {
				from = ctx.Sender().Address
			}
			a.r.adopt(m.Json, from)
		}
	}
}
