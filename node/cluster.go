package node

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/rules"
)

// clusterParts are what a clustered node runs besides a single node's
// parts: membership, the channel, the placement and the ownership loop.
type clusterParts struct {
	placement  *cluster.Placement
	membership *cluster.Membership
	channel    *cluster.Channel
	ownership  *cluster.Ownership
}

// newPlacement makes the placement before the actors exist; sys is set
// once they do.
func newPlacement(cfg Config, sys *atomic.Pointer[actors.System]) *cluster.Placement {
	return cluster.NewPlacement(cfg.Partitions, cfg.Name, func(p int) *actor.PID {
		if s := sys.Load(); s != nil {
			return s.LocalPartition(p)
		}
		return nil
	})
}

// startCluster starts the channel on the node's actor system, joins the
// cluster and starts following it.
func (n *Node) startCluster(pl *cluster.Placement) error {
	cfg := n.cfg
	ch, err := cluster.StartChannel(n.actors.ActorSystem(), cluster.ChannelConfig{
		BindAddr:    cfg.ClusterAddr,
		Secret:      cfg.Secret,
		Insecure:    cfg.Insecure,
		ClusterName: cfg.ClusterName,
		Logger:      n.log.With("component", "channel"),
	})
	if err != nil {
		return fmt.Errorf("--cluster-addr %s: %w", cfg.ClusterAddr, err)
	}
	cl := &clusterParts{placement: pl, channel: ch}
	n.setCluster(cl) // so that Close stops the channel if the rest fails
	if err := n.startSettings(); err != nil {
		return err
	}
	if err := n.startIntrospect(); err != nil {
		return err
	}
	_, rulesVersion := n.pipe.rulesOf(rules.ScopeCluster)
	ms, err := cluster.Start(cluster.Config{
		Name:          cfg.Name,
		BindAddr:      cfg.Gossip,
		Join:          cfg.Join,
		Secret:        cfg.Secret,
		Insecure:      cfg.Insecure,
		Fast:          cfg.GossipFast,
		WrapTransport: cfg.WrapGossip,
		Logger:        n.log.With("component", "gossip"),
		Meta: cluster.Meta{
			Cluster:      cfg.ClusterName,
			Version:      Version,
			Roles:        cfg.Roles,
			QueueMode:    cfg.QueueMode,
			SMTP:         n.SMTPAddr(),
			Channel:      ch.Address(),
			Admin:        n.AdminAddr(),
			Partitions:   cfg.Partitions,
			Static:       cfg.StaticPartitions,
			Started:      n.started.UnixNano(),
			RulesVersion: rulesVersion,
		},
	})
	if err != nil {
		return fmt.Errorf("--gossip %s: %w", cfg.Gossip, err)
	}
	full := &clusterParts{placement: pl, channel: ch, membership: ms}
	n.setCluster(full)
	own := cluster.RunOwnership(ms, pl, n.actors, cfg.hasRole("backend"), n.log.With("component", "ownership"), n.syncClusterRules)
	n.setCluster(&clusterParts{placement: pl, channel: ch, membership: ms, ownership: own})
	return nil
}

func (n *Node) setCluster(cl *clusterParts) {
	n.mu.Lock()
	n.cl = cl
	n.mu.Unlock()
}

// cluster returns the node's cluster parts (nil on a single node, or
// before they are started). The parts are never changed once published.
func (n *Node) cluster() *clusterParts {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cl
}

// stopCluster leaves the cluster gracefully: the others see "left" and
// take over this node's partitions, which close when the actors stop.
func (n *Node) stopCluster() error {
	cl := n.cluster()
	if cl == nil {
		return nil
	}
	if cl.ownership != nil {
		cl.ownership.Stop()
	}
	var err error
	if cl.membership != nil && !n.abrupt.Load() {
		err = cl.membership.Leave(2 * time.Second)
	}
	return err
}

// closeCluster stops what must outlive the actors: the channel and the
// gossip.
func (n *Node) closeCluster() error {
	cl := n.cluster()
	if cl == nil {
		return nil
	}
	if cl.channel != nil {
		cl.channel.Stop()
	}
	if cl.membership != nil {
		return cl.membership.Shutdown()
	}
	return nil
}

// clusterView is GET /api/v1/cluster on a clustered node.
func (n *Node) clusterView(cl *clusterParts) admin.Cluster {
	var c admin.Cluster
	for _, m := range cl.membership.Members() {
		mem := admin.Member{
			Name: m.Name, Roles: m.Meta.Roles, QueueMode: m.Meta.QueueMode, State: string(m.State),
			SMTP: m.Meta.SMTP, Admin: m.Meta.Admin, Version: m.Meta.Version,
		}
		if m.Meta.Started > 0 && (m.State == cluster.StateAlive || m.State == cluster.StateSuspect) {
			mem.Uptime = time.Since(time.Unix(0, m.Meta.Started)).Round(time.Second).String()
		}
		c.Members = append(c.Members, mem)
	}
	for p, o := range cl.placement.Owners() {
		c.Partitions = append(c.Partitions, admin.Partition{ID: p, Owner: o})
	}
	return c
}
