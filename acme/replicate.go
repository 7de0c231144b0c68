package acme

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
)

// CertsActor is the name of the actor that hands out and takes a
// frontend's certificate bundles and challenges over the cluster channel
// (mutual TLS from the cluster secret: only members reach it, and the
// bundles hold private keys).
const CertsActor = "acme-certs"

// Scopes of the messages it shares with the cluster-wide rules'
// replication (pb.Rules, pb.GetRules, pb.RulesAck): the same wire shape,
// scopes of its own.
const (
	scopeBundles   = "acme-certs"
	scopeChallenge = "acme-challenge"
)

// requestTimeout bounds each request to a member.
const requestTimeout = 5 * time.Second

// Members is what the replicator needs of the membership.
// *cluster.Membership satisfies it.
type Members interface {
	Members() []cluster.Member
}

// Replicator keeps the certificate bundles of every frontend the same,
// as dkim.Replicator does the DKIM keys: a change here is pushed to every
// live frontend, and after each membership change (Sync) the bundles of
// all of them are fetched and merged (Store.Merge: the bundle that
// expires last wins). It also hands each HTTP-01 challenge to every
// live frontend before the CA is told to validate (Publish), and says
// which frontend obtains (Rank).
type Replicator struct {
	store      *Store
	challenges *Challenges
	log        *slog.Logger

	mu      sync.Mutex
	root    *actor.RootContext
	members Members
}

// NewReplicator returns the replicator of store and challenges; it
// pushes every change of store once Start and Join have run.
func NewReplicator(store *Store, challenges *Challenges, log *slog.Logger) *Replicator {
	r := &Replicator{store: store, challenges: challenges, log: log}
	store.OnChange(r.push)
	return r
}

// Start spawns the certificates actor on system (clustered nodes).
func (r *Replicator) Start(system *actor.ActorSystem) error {
	if _, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &certsActor{r: r}
	}), CertsActor); err != nil {
		return fmt.Errorf("ACME certificates actor: %w", err)
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
	if r == nil {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.root, r.members
}

// peers are the other live frontends reachable over the channel.
func (r *Replicator) peers() []cluster.Member {
	_, ms := r.cluster()
	if ms == nil {
		return nil
	}
	var out []cluster.Member
	for _, m := range ms.Members() {
		if !m.Self && m.State == cluster.StateAlive && m.Meta.Channel != "" && m.Meta.HasRole(mail.RoleFrontend) {
			out = append(out, m)
		}
	}
	return out
}

// Alone reports whether no other live frontend is reachable.
func (r *Replicator) Alone() bool { return len(r.peers()) == 0 }

// Rank is this node's place among the live frontends ordered by name: 0
// obtains the certificate, the others wait for it (Manager). A node
// outside a cluster is 0.
func (r *Replicator) Rank() int {
	_, ms := r.cluster()
	if ms == nil {
		return 0
	}
	var names []string
	self := ""
	for _, m := range ms.Members() {
		if m.State == cluster.StateAlive && m.Meta.HasRole(mail.RoleFrontend) || m.Self {
			names = append(names, m.Name)
		}
		if m.Self {
			self = m.Name
		}
	}
	slices.Sort(names)
	if i := slices.Index(names, self); i > 0 {
		return i
	}
	return 0
}

// Met reports whether this node has met the cluster (joined its seeds,
// or has none), so that Rank and the bundles fetched mean something.
func (r *Replicator) Met() bool {
	_, ms := r.cluster()
	if ms == nil {
		return false
	}
	if m, ok := ms.(interface{ Met() bool }); ok {
		return m.Met()
	}
	return true
}

func (r *Replicator) encoded() []byte {
	b, _ := json.Marshal(r.store.All())
	return b
}

// push sends this node's bundles to every live frontend (best effort:
// one that misses it fetches them at the next membership change).
func (r *Replicator) push() {
	root, _ := r.cluster()
	if root == nil {
		return
	}
	js := r.encoded()
	for _, m := range r.peers() {
		root.Send(actor.NewPID(m.Meta.Channel, CertsActor), &pb.Rules{Scope: scopeBundles, Json: js})
	}
}

// Sync fetches every live frontend's bundles and merges them here, all
// at once; it returns when each has answered or timed out, or ctx ends.
func (r *Replicator) Sync(ctx context.Context) {
	root, _ := r.cluster()
	if root == nil {
		return
	}
	var wg sync.WaitGroup
	for _, m := range r.peers() {
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			f := root.RequestFuture(actor.NewPID(m.Meta.Channel, CertsActor), &pb.GetRules{Scope: scopeBundles}, requestTimeout)
			res, err := f.Result()
			rs, ok := res.(*pb.Rules)
			if err != nil || !ok {
				r.log.Debug("fetching a member's ACME certificates failed", "member", m.Name, "err", err)
				return
			}
			r.adopt(rs.Json, m.Name)
		}(m)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Publish hands c to every live frontend and returns when all have
// acknowledged it, requestTimeout has passed, or ctx ends: how many
// acknowledged, of how many.
func (r *Replicator) Publish(ctx context.Context, c Challenge) (acked, of int) {
	root, _ := r.cluster()
	if root == nil {
		return 0, 0
	}
	js, _ := json.Marshal(c)
	peers := r.peers()
	results := make(chan bool, len(peers))
	for _, m := range peers {
		go func(m cluster.Member) {
			f := root.RequestFuture(actor.NewPID(m.Meta.Channel, CertsActor), &pb.Rules{Scope: scopeChallenge, Json: js}, requestTimeout)
			res, err := f.Result()
			_, ok := res.(*pb.RulesAck)
			results <- err == nil && ok
		}(m)
	}
	for range peers {
		select {
		case ok := <-results:
			if ok {
				acked++
			}
		case <-ctx.Done():
			return acked, len(peers)
		}
	}
	return acked, len(peers)
}

// adopt merges a member's bundles.
func (r *Replicator) adopt(js []byte, from string) {
	var bs []Bundle
	if err := json.Unmarshal(js, &bs); err != nil {
		r.log.Warn("ACME certificates from a member refused", "member", from, "err", err)
		return
	}
	changed, err := r.store.Merge(bs)
	if err != nil {
		r.log.Error("saving ACME certificates from a member failed", "member", from, "err", err)
		return
	}
	if changed {
		r.log.Info("ACME certificate learnt from a member", "member", from)
	}
}

// certsActor answers members: it hands out this node's bundles, merges
// theirs and takes their challenges.
type certsActor struct{ r *Replicator }

func (a *certsActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pb.GetRules:
		if m.Scope == scopeBundles {
			ctx.Respond(&pb.Rules{Scope: scopeBundles, Json: a.r.encoded()})
		}
	case *pb.Rules:
		from := ""
		if ctx.Sender() != nil {
			from = ctx.Sender().Address
		}
		switch m.Scope {
		case scopeBundles:
			a.r.adopt(m.Json, from)
		case scopeChallenge:
			var c Challenge
			if err := json.Unmarshal(m.Json, &c); err != nil {
				a.r.log.Warn("an ACME challenge from a member refused", "member", from, "err", err)
				return
			}
			a.r.challenges.Add(c)
			a.r.log.Info("answering an ACME challenge for a member", "member", from)
			if ctx.Sender() != nil {
				ctx.Respond(&pb.RulesAck{})
			}
		}
	}
}
