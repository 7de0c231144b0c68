package content

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/rules"
)

// Membership is what the Replicator needs of the cluster's membership.
// *cluster.Membership satisfies it.
type Membership interface {
	Members() []cluster.Member
	UpdateMeta(func(*cluster.Meta)) error
}

// Replicator keeps the cluster-wide rule set the same on every member: a
// change made on any node gets a new version (the time of the change),
// is applied and saved there, pushed to every live member, and gossiped
// as the node's RulesVersion; a member that sees a newer version in
// gossip than its own fetches the set (Sync). The newest version wins
// everywhere. On a single node (no Membership) it only applies the change.
//
// Members talk to each other's "settings" actor over the cluster channel
// (only members can reach it: the channel is mutual TLS from the secret).
type Replicator struct {
	pipe *Pipeline
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	root    *actor.RootContext // set by Start
	members Membership         // set by Join; nil on a single node
}

// SettingsActor is the actor name members address (actor.NewPID(channel
// address, SettingsActor)).
const SettingsActor = "settings"

// NewReplicator returns the replicator of pipe. Until Start and Join it
// only applies changes here (a single node).
func NewReplicator(pipe *Pipeline, log *slog.Logger) *Replicator {
	return &Replicator{pipe: pipe, log: log, now: time.Now}
}

// Start spawns the settings actor on system (clustered nodes).
func (r *Replicator) Start(system *actor.ActorSystem) error {
	if _, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &settingsActor{r: r}
	}), SettingsActor); err != nil {
		return fmt.Errorf("settings actor: %w", err)
	}
	r.mu.Lock()
	r.root = system.Root
	r.mu.Unlock()
	return nil
}

// Join makes changes reach members, once the node has joined the cluster.
func (r *Replicator) Join(members Membership) {
	r.mu.Lock()
	r.members = members
	r.mu.Unlock()
}

// cluster returns what reaches the members; nil values on a single node.
func (r *Replicator) cluster() (*actor.RootContext, Membership) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.root, r.members
}

// settingsActor answers members: it hands out the cluster-wide rules and
// takes newer ones.
type settingsActor struct{ r *Replicator }

func (s *settingsActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pb.GetRules:
		rs, v := s.r.pipe.Rules(rules.ScopeCluster)
		b, _ := json.Marshal(rs)
		ctx.Respond(&pb.Rules{Scope: "cluster", Version: v, Json: b})
	case *pb.Rules:
		if m.Scope == "cluster" {
			if err := s.r.adopt(m.Json, m.Version); err != nil {
				s.r.log.Error("cluster rules from a member refused", "version", m.Version, "err", err)
			}
		}
		_, v := s.r.pipe.Rules(rules.ScopeCluster)
		ctx.Respond(&pb.RulesAck{Version: v})
	}
}

// Set is the administrator's change of the cluster-wide rules: a new
// version, applied and saved here and pushed to every live member (best
// effort; a member that misses it fetches it when it sees the newer
// version in gossip). An invalid set is an error wrapping
// rules.ErrInvalidRule.
func (r *Replicator) Set(rs []rules.Rule) (int64, error) {
	js, err := json.Marshal(rs)
	if err != nil {
		return 0, err
	}
	_, cur := r.pipe.Rules(rules.ScopeCluster)
	version := max(r.now().UnixNano(), cur+1)
	if err := r.adopt(js, version); err != nil {
		return 0, err
	}
	root, _ := r.cluster()
	if root == nil {
		return version, nil
	}
	for _, m := range r.peers() {
		root.Request(actor.NewPID(m.Meta.Channel, SettingsActor), &pb.Rules{Scope: "cluster", Version: version, Json: js})
	}
	return version, nil
}

// Sync runs after every membership change: if a member applies a newer
// cluster-wide rule set, fetch it (on a goroutine of its own).
func (r *Replicator) Sync() {
	root, _ := r.cluster()
	if root == nil {
		return
	}
	_, cur := r.pipe.Rules(rules.ScopeCluster)
	var best cluster.Member
	for _, m := range r.peers() {
		if m.Meta.RulesVersion > cur && m.Meta.RulesVersion > best.Meta.RulesVersion {
			best = m
		}
	}
	if best.Name == "" {
		return
	}
	go func() {
		f := root.RequestFuture(actor.NewPID(best.Meta.Channel, SettingsActor), &pb.GetRules{Scope: "cluster"}, 5*time.Second)
		res, err := f.Result()
		rs, ok := res.(*pb.Rules)
		if err != nil || !ok {
			r.log.Warn("fetching cluster-wide rules failed", "member", best.Name, "err", err)
			return
		}
		if err := r.adopt(rs.Json, rs.Version); err != nil {
			r.log.Error("cluster-wide rules from a member refused", "member", best.Name, "err", err)
		}
	}()
}

// peers are the live members other than this node that have a channel.
func (r *Replicator) peers() []cluster.Member {
	_, members := r.cluster()
	if members == nil {
		return nil
	}
	var out []cluster.Member
	for _, m := range members.Members() {
		if !m.Self && m.State == cluster.StateAlive && m.Meta.Channel != "" {
			out = append(out, m)
		}
	}
	return out
}

// adopt installs a cluster-wide rule set if it is newer than the one in
// force, saves it, and gossips its version.
func (r *Replicator) adopt(js []byte, version int64) error {
	if _, cur := r.pipe.Rules(rules.ScopeCluster); version <= cur {
		return nil
	}
	var rs []rules.Rule
	if err := json.Unmarshal(js, &rs); err != nil {
		return err
	}
	if err := r.pipe.Set(rules.ScopeCluster, rs, version); err != nil {
		return err
	}
	if err := r.pipe.Save(); err != nil {
		return err
	}
	r.log.Info("cluster-wide rules changed", "version", version, "rules", len(rs))
	if _, members := r.cluster(); members != nil {
		return members.UpdateMeta(func(m *cluster.Meta) { m.RulesVersion = version })
	}
	return nil
}
