package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit/tlog"
	"github.com/homing-mail/homing/testkit/wait"
)

// settleTimeout bounds StartCluster's, AddBackend's, Restart's and
// WaitSettled's wait for the placement to settle. With GossipFast a crash is
// detected in about 2 s and partitions open in well under a second.
const settleTimeout = 30 * time.Second

// ClusterOptions shapes an in-process cluster. Zero fields take the
// defaults written on them.
type ClusterOptions struct {
	Frontends int // frontend-only nodes fe1, fe2, ...; default 1
	Backends  int // backend-only nodes be1, be2, ...; default 2
	// Partitions is the number of account partitions; default 8.
	Partitions int
	// Node, if set, changes a node's configuration after StartCluster
	// has filled it (and wins over it), before every start of the node,
	// Restart included. It is called on the test's goroutine. Replacing
	// WrapGossip takes the node off the Switch and hides its gossip
	// address from the nodes that join after it.
	Node func(name string, c *node.Config)
	// LogLevel is the least level of the records the nodes write to
	// t.Log; the zero value is slog.LevelInfo. slog.LevelDebug shows
	// everything, memberlist's chatter included (with GossipFast, several
	// lines per node every 100 ms while a member is dead).
	LogLevel slog.Level
}

// Cluster is a dynamic Homing cluster of in-process nodes on loopback, in
// the manner of hashicorp/raft's MakeCluster: every node listens on
// 127.0.0.1:0 (SMTP, admin, gossip, cluster channel), the backends share
// one fresh account store, gossip runs with GossipFast and a random
// secret, and every node's gossip transport goes through one
// cluster.Switch, so that tests can cut and heal gossip links by node
// name. Each node logs into t.Log, prefixed with its name.
//
// Only gossip is switched: the cluster channel (protoactor remote) and
// SMTP still connect across a cut, so a cut makes nodes believe each other
// dead, which is what decides placement and Local Delivery.
//
// protoactor's remote has data races when several run in one process (it
// writes grpc's global logger on start; a shutdown race), so tests that
// start a Cluster cannot run under -race: put them in files built with
// `//go:build !race` (real processes, as in node/cluster_test.go, are the
// way to test a cluster under -race).
//
// Methods fail the test with t.Fatalf when they cannot do their job (a
// node that does not start, a name that does not run, a cluster that does
// not settle): call them from the goroutine running the test that started
// the cluster. Names, and Node and Admin of a running node, are also safe
// to call from other goroutines (a sender loop, say).
type Cluster struct {
	t      testing.TB
	opt    ClusterOptions
	secret string
	store  string // the shared account store of the backends
	sw     *cluster.Switch
	http   *http.Client // for every Admin client; closed at cleanup

	op sync.Mutex // serialises starts, stops and cuts

	mu      sync.Mutex
	order   []string // every node ever started, in first-start order
	members map[string]*clusterMember
	cut     bool // a Partition or Isolate is in effect (until Heal)
}

// clusterMember is one node of a Cluster, running or stopped.
type clusterMember struct {
	cfg     node.Config // as first made; ports stay 127.0.0.1:0 for every start
	node    *node.Node  // nil while stopped
	gossip  string      // gossip host:port of the running node
	backend bool        // the running node has the backend role
}

// StartCluster starts opt.Frontends frontends (fe1, ...) and then
// opt.Backends backends (be1, ...), each joining the nodes started before
// it, and waits until every partition is owned by a backend that has it
// open (WaitSettled). The nodes are closed when the test ends.
func StartCluster(t testing.TB, opt ClusterOptions) *Cluster {
	t.Helper()
	if opt.Frontends == 0 {
		opt.Frontends = 1
	}
	if opt.Backends == 0 {
		opt.Backends = 2
	}
	if opt.Partitions == 0 {
		opt.Partitions = 8
	}
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	c := &Cluster{
		t:       t,
		opt:     opt,
		secret:  hex.EncodeToString(secret),
		store:   t.TempDir(),
		sw:      cluster.NewSwitch(),
		http:    &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}},
		members: map[string]*clusterMember{},
	}
	t.Cleanup(c.http.CloseIdleConnections) // after every node's closeAtEnd
	for i := 1; i <= opt.Frontends; i++ {
		c.add("fe"+strconv.Itoa(i), mail.RoleFrontend)
	}
	for i := 1; i <= opt.Backends; i++ {
		c.add("be"+strconv.Itoa(i), mail.RoleBackend)
	}
	c.WaitSettled(t)
	return c
}

// add makes a new member with one role and starts it.
func (c *Cluster) add(name string, role mail.Role) *node.Node {
	c.t.Helper()
	c.mu.Lock()
	_, exists := c.members[name]
	c.mu.Unlock()
	if exists {
		c.t.Fatalf("cluster: a node named %s exists already", name)
	}
	cfg := TestConfig(c.t, name)
	cfg.Logger = tlog.New(c.t, name, tlog.MinLevel(c.opt.LogLevel))
	cfg.Roles = []mail.Role{role}
	cfg.Store.Partitions = c.opt.Partitions
	cfg.Store.AccountStore = c.store
	cfg.Cluster.Gossip = "127.0.0.1:0"
	cfg.Cluster.Addr = "127.0.0.1:0"
	cfg.Cluster.Secret = c.secret
	cfg.Cluster.GossipFast = true
	cfg.Queue.LocalRetry = 300 * time.Millisecond
	m := &clusterMember{cfg: cfg}
	c.closeAtEnd(m)
	c.mu.Lock()
	c.members[name] = m
	c.order = append(c.order, name)
	c.mu.Unlock()
	return c.start(name, m)
}

// start starts m's node, joining every running node.
func (c *Cluster) start(name string, m *clusterMember) *node.Node {
	c.t.Helper()
	cfg := m.cfg
	cfg.Cluster.Join = c.gossipSeeds()
	var addr gossipAddr
	wrap := c.sw.Wrap(name)
	cfg.Cluster.WrapGossip = func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		return wrap(&addressRecorder{NodeAwareTransport: inner, addr: &addr})
	}
	if c.opt.Node != nil {
		c.opt.Node(name, &cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		c.t.Fatalf("cluster: starting %s: %v", name, err)
	}
	c.mu.Lock()
	m.node, m.gossip = n, addr.get()
	m.backend = len(cfg.Roles) == 0 || mail.HasRole(cfg.Roles, mail.RoleBackend) // no roles: both
	c.mu.Unlock()
	return n
}

// gossipSeeds returns the gossip addresses of the running nodes.
func (c *Cluster) gossipSeeds() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var seeds []string
	for _, name := range c.order {
		if m := c.members[name]; m.node != nil && m.gossip != "" {
			seeds = append(seeds, m.gossip)
		}
	}
	return seeds
}

// closeAtEnd closes m's node, if it runs, when the test ends, without
// leaving the cluster (nobody is left to care, and a graceful leave waits
// for its broadcast). It is registered right after the node's logger, so
// that it runs before the logger stops writing to t.Log (cleanups run last
// registered first), and nodes close in the reverse order of their
// creation.
func (c *Cluster) closeAtEnd(m *clusterMember) {
	c.t.Cleanup(func() {
		c.op.Lock()
		defer c.op.Unlock()
		c.mu.Lock()
		n := m.node
		m.node, m.gossip = nil, ""
		c.mu.Unlock()
		if n == nil {
			return
		}
		start := time.Now()
		if err := n.CloseAbruptly(); err != nil {
			c.t.Errorf("cluster: closing %s: %v", n.Name(), err)
		}
		c.t.Logf("cluster: %s closed in %v", n.Name(), time.Since(start).Round(time.Millisecond))
	})
}

// member returns the member called name, failing the test if there is none.
func (c *Cluster) member(name string) *clusterMember {
	c.t.Helper()
	c.mu.Lock()
	m := c.members[name]
	c.mu.Unlock()
	if m == nil {
		c.t.Fatalf("cluster: no node named %s", name)
	}
	return m
}

// Node returns the running node called name; it fails the test if no node
// of that name runs.
func (c *Cluster) Node(name string) *node.Node {
	c.t.Helper()
	m := c.member(name)
	c.mu.Lock()
	n := m.node
	c.mu.Unlock()
	if n == nil {
		c.t.Fatalf("cluster: node %s is not running", name)
	}
	return n
}

// Admin returns an admin API client for the running node called name.
func (c *Cluster) Admin(name string) *admin.Client {
	c.t.Helper()
	return c.adminOf(c.Node(name))
}

func (c *Cluster) adminOf(n *node.Node) *admin.Client {
	cl := admin.NewClient(n.AdminAddr(), "")
	cl.HTTP = c.http
	return cl
}

// Names returns the names of the running nodes, in the order they were
// first started (frontends, then backends, then those added later).
func (c *Cluster) Names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, name := range c.order {
		if c.members[name].node != nil {
			out = append(out, name)
		}
	}
	return out
}

// AddBackend starts a new backend called name (a name not used before in
// this cluster) that joins the running nodes, and
// waits until the placement has settled with it (unless a Partition or
// Isolate is in effect: then it returns once the node runs).
func (c *Cluster) AddBackend(name string) *node.Node {
	c.t.Helper()
	c.op.Lock()
	n := c.add(name, "backend")
	c.op.Unlock()
	c.settleUnlessCut()
	return n
}

// Kill stops node name as a crash would, as far as the others can tell: it
// does not leave the cluster, so they declare it dead through failure
// detection (about 2 s). Its data is closed, so that another node can open
// its partitions.
func (c *Cluster) Kill(name string) {
	c.t.Helper()
	c.stop(name, (*node.Node).CloseAbruptly)
}

// Stop closes node name gracefully: it leaves the cluster, and the others
// see it as "left" and take over its partitions.
func (c *Cluster) Stop(name string) {
	c.t.Helper()
	c.stop(name, (*node.Node).Close)
}

func (c *Cluster) stop(name string, close func(*node.Node) error) {
	c.t.Helper()
	c.op.Lock()
	defer c.op.Unlock()
	m := c.member(name)
	c.mu.Lock()
	n := m.node
	m.node, m.gossip = nil, ""
	c.mu.Unlock()
	if n == nil {
		c.t.Fatalf("cluster: node %s is not running", name)
	}
	if err := close(n); err != nil {
		c.t.Errorf("cluster: closing %s: %v", name, err)
	}
}

// Restart starts node name again with the same name, data directory and
// roles, on new ports, joining the running nodes (it is stopped gracefully
// first if it runs), and waits until the placement has settled (unless a
// Partition or Isolate is in effect: then it returns once the node runs).
// A node that was isolated stays isolated until Heal.
func (c *Cluster) Restart(name string) *node.Node {
	c.t.Helper()
	m := c.member(name)
	c.mu.Lock()
	running := m.node != nil
	c.mu.Unlock()
	if running {
		c.Stop(name)
	}
	c.op.Lock()
	n := c.start(name, m)
	c.op.Unlock()
	c.settleUnlessCut()
	return n
}

func (c *Cluster) settleUnlessCut() {
	c.t.Helper()
	c.mu.Lock()
	cut := c.cut
	c.mu.Unlock()
	if !cut {
		c.WaitSettled(c.t)
	}
}

// Isolate cuts every gossip link of node name (to nodes started later
// too) until Heal: it and the others soon believe each other dead.
func (c *Cluster) Isolate(name string) {
	c.t.Helper()
	c.member(name)
	c.mu.Lock()
	c.cut = true
	c.mu.Unlock()
	c.sw.Isolate(name)
}

// Partition cuts the gossip link between nodes a and b, both ways, until
// Heal. Where a third node reaches both, memberlist's indirect probes
// through it may keep a and b alive in each other's eyes; a two-node cut
// (or Isolate) always ends in "dead".
func (c *Cluster) Partition(a, b string) {
	c.t.Helper()
	c.member(a)
	c.member(b)
	c.mu.Lock()
	c.cut = true
	c.mu.Unlock()
	c.sw.Cut(a, b)
}

// Heal brings every gossip link up again. It does not wait: the nodes find
// each other again within a second or two (WaitSettled waits for that).
func (c *Cluster) Heal() {
	c.mu.Lock()
	c.cut = false
	c.mu.Unlock()
	c.sw.Heal()
}

// WaitSettled waits until the cluster has converged, and fails t if it does
// not within 30 s: every running node sees every running node alive and the
// same owner for each partition; every owner is a running backend, and
// each running backend runs exactly the partitions it owns, all open
// (GET /api/v1/cluster and /api/v1/partitions of every running node). It
// cannot succeed while a Partition or Isolate is in effect.
func (c *Cluster) WaitSettled(t testing.TB) {
	t.Helper()
	var why, last string
	start := time.Now()
	wait.For(t, settleTimeout, func() bool {
		why = c.unsettled()
		if why != "" {
			last = why
		}
		return why == ""
	}, "cluster not settled: %s", wait.Lazy(func() string { return why }))
	if last == "" {
		t.Logf("cluster settled")
	} else {
		t.Logf("cluster settled in %v (last waited for: %s)", time.Since(start).Round(time.Millisecond), last)
	}
}

// unsettled returns why the cluster has not settled, or "" if it has.
func (c *Cluster) unsettled() string {
	c.mu.Lock()
	var names []string
	nodes := map[string]*node.Node{}
	backend := map[string]bool{}
	for _, name := range c.order {
		m := c.members[name]
		if m.node == nil {
			continue
		}
		names = append(names, name)
		nodes[name] = m.node
		backend[name] = m.backend
	}
	c.mu.Unlock()
	if !slices.ContainsFunc(names, func(n string) bool { return backend[n] }) {
		return "no backend runs"
	}
	// A node answers at once unless a partition actor is busy (stopping,
	// say): then ask again on the next poll rather than wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	var owners []string // by partition, as the first running node sees them
	for _, name := range names {
		view, err := c.adminOf(nodes[name]).Cluster(ctx)
		if err != nil {
			return fmt.Sprintf("%s: GET /api/v1/cluster: %v", name, err)
		}
		state := map[string]string{}
		for _, mem := range view.Members {
			state[mem.Name] = mem.State
		}
		for _, other := range names {
			if state[other] != "alive" {
				return fmt.Sprintf("%s sees %s as %q", name, other, state[other])
			}
		}
		if len(view.Partitions) != c.opt.Partitions {
			return fmt.Sprintf("%s lists %d partitions, want %d", name, len(view.Partitions), c.opt.Partitions)
		}
		seen := make([]string, c.opt.Partitions)
		for _, p := range view.Partitions {
			if p.ID < 0 || p.ID >= c.opt.Partitions {
				return fmt.Sprintf("%s lists partition %d", name, p.ID)
			}
			if !backend[p.Owner] {
				return fmt.Sprintf("%s sees partition %d owned by %q, not a running backend", name, p.ID, p.Owner)
			}
			seen[p.ID] = p.Owner
		}
		if owners == nil {
			owners = seen
		} else if !slices.Equal(owners, seen) {
			return fmt.Sprintf("%s sees owners %v, %s sees %v", names[0], owners, name, seen)
		}
	}
	for _, name := range names {
		if !backend[name] {
			continue
		}
		ps, err := c.adminOf(nodes[name]).Partitions(ctx)
		if err != nil {
			return fmt.Sprintf("%s: GET /api/v1/partitions: %v", name, err)
		}
		var want, got []int
		for p, o := range owners {
			if o == name {
				want = append(want, p)
			}
		}
		for _, p := range ps {
			if !p.Open {
				return fmt.Sprintf("%s has partition %d not open yet", name, p.ID)
			}
			got = append(got, p.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Sprintf("%s runs partitions %v, owns %v", name, got, want)
		}
	}
	return ""
}

// gossipAddr is the gossip address a node advertises, as recorded by its
// addressRecorder during node.Start.
type gossipAddr struct {
	mu   sync.Mutex
	addr string
}

func (a *gossipAddr) get() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// addressRecorder wraps a node's gossip transport (under the Switch) to
// learn the address memberlist advertises, the seed other nodes join: the
// node asks for port 0 and does not expose the port it got.
type addressRecorder struct {
	memberlist.NodeAwareTransport
	addr *gossipAddr
}

// FinalAdvertiseAddr records the address memberlist will advertise.
func (r *addressRecorder) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	addrIP, addrPort, err := r.NodeAwareTransport.FinalAdvertiseAddr(ip, port)
	if err == nil {
		r.addr.mu.Lock()
		r.addr.addr = net.JoinHostPort(addrIP.String(), strconv.Itoa(addrPort))
		r.addr.mu.Unlock()
	}
	return addrIP, addrPort, err
}
