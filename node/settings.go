package node

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/rules"
)

// settingsActor is this node's "settings" actor on the cluster channel:
// members ask it for the cluster-wide rules and hand it newer ones. The
// newest version (the time of the change) wins everywhere.
type settingsActor struct{ n *Node }

func (s *settingsActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pb.GetRules:
		rs, v := s.n.pipe.rulesOf(rules.ScopeCluster)
		b, _ := json.Marshal(rs)
		ctx.Respond(&pb.Rules{Scope: "cluster", Version: v, Json: b})
	case *pb.Rules:
		if m.Scope == "cluster" {
			if err := s.n.adoptClusterRules(m.Json, m.Version); err != nil {
				s.n.log.Error("cluster rules from a member refused", "version", m.Version, "err", err)
			}
		}
		_, v := s.n.pipe.rulesOf(rules.ScopeCluster)
		ctx.Respond(&pb.RulesAck{Version: v})
	}
}

// adoptClusterRules installs a cluster-wide rule set if it is newer than
// the one in force, saves it, and gossips its version.
func (n *Node) adoptClusterRules(js []byte, version int64) error {
	if _, cur := n.pipe.rulesOf(rules.ScopeCluster); version <= cur {
		return nil
	}
	var rs []rules.Rule
	if err := json.Unmarshal(js, &rs); err != nil {
		return err
	}
	if err := n.pipe.set(rules.ScopeCluster, rs, version); err != nil {
		return err
	}
	if err := n.pipe.save(); err != nil {
		return err
	}
	n.log.Info("cluster-wide rules changed", "version", version, "rules", len(rs))
	if cl := n.cluster(); cl != nil && cl.membership != nil {
		return cl.membership.UpdateMeta(func(m *cluster.Meta) { m.RulesVersion = version })
	}
	return nil
}

// setClusterRules is the administrator's change: a new version, applied
// here and pushed to every live member (best effort; a member that misses
// it fetches it when it sees the newer version in gossip).
func (n *Node) setClusterRules(js []byte) (int64, error) {
	_, cur := n.pipe.rulesOf(rules.ScopeCluster)
	version := max(time.Now().UnixNano(), cur+1)
	if err := n.adoptClusterRules(js, version); err != nil {
		return 0, err
	}
	root := n.actors.ActorSystem().Root
	for _, m := range n.members(func(m cluster.Member) bool { return !m.Self && m.State == cluster.StateAlive && m.Meta.Channel != "" }) {
		root.Request(actor.NewPID(m.Meta.Channel, "settings"), &pb.Rules{Scope: "cluster", Version: version, Json: js})
	}
	return version, nil
}

// syncClusterRules runs after every membership change: if a member
// applies a newer cluster-wide rule set, fetch it.
func (n *Node) syncClusterRules() {
	_, cur := n.pipe.rulesOf(rules.ScopeCluster)
	var best cluster.Member
	for _, m := range n.members(func(m cluster.Member) bool { return !m.Self && m.State == cluster.StateAlive }) {
		if m.Meta.RulesVersion > cur && m.Meta.RulesVersion > best.Meta.RulesVersion {
			best = m
		}
	}
	if best.Name == "" || best.Meta.Channel == "" {
		return
	}
	go func() {
		f := n.actors.ActorSystem().Root.RequestFuture(actor.NewPID(best.Meta.Channel, "settings"), &pb.GetRules{Scope: "cluster"}, 5*time.Second)
		res, err := f.Result()
		r, ok := res.(*pb.Rules)
		if err != nil || !ok {
			n.log.Warn("fetching cluster-wide rules failed", "member", best.Name, "err", err)
			return
		}
		if err := n.adoptClusterRules(r.Json, r.Version); err != nil {
			n.log.Error("cluster-wide rules from a member refused", "member", best.Name, "err", err)
		}
	}()
}

// startSettings spawns the settings actor (clustered nodes).
func (n *Node) startSettings() error {
	_, err := n.actors.ActorSystem().Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &settingsActor{n: n}
	}), "settings")
	if err != nil {
		return fmt.Errorf("settings actor: %w", err)
	}
	return nil
}
