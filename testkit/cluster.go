package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit/tlog"
)

// settleTimeout bounds StartCluster's, AddBackend's, Restart's and
// WaitSettled's wait for the placement to settle. With GossipFast a crash is
// detected in about 2 s and partitions open in well under a second.
const settleTimeout = 30 * time.Second

// Runner is how a Cluster runs its nodes.
type Runner int

const (
	// InProcess runs every node with node.Start in this process: fast;
	// gossip goes through a cluster.Switch, so Isolate, Partition and Heal
	// cut and heal links; Node gives a node's internals. protoactor's
	// remote has data races when several run in one process (it writes
	// grpc's global logger on start; a shutdown race), so tests with this
	// runner cannot run under -race: put them in files built with
	// `//go:build !race`.
	InProcess Runner = iota
	// Processes runs every node as a `homing serve` child process
	// (ClusterOptions.Binary, see BuildHoming) on loopback port 0; each
	// reports its addresses through --ready-file, so no port is guessed.
	// Usable under -race; Kill is kill -9 and Signal sends SIGSTOP and
	// SIGCONT. Isolate, Partition and Heal need the in-process runner.
	Processes
)

// ClusterOptions shapes a cluster. Zero fields take the defaults written on
// them.
type ClusterOptions struct {
	Runner Runner
	// Binary is the homing binary of the Processes runner.
	Binary string
	// Frontends and Backends are the nodes StartCluster starts: fe1, fe2,
	// ... then be1, be2, ...; defaults 1 and 2. NewCluster starts none.
	Frontends, Backends int
	// Partitions is the number of account partitions; default 8.
	Partitions int
	// Node, if set, changes an in-process node's configuration after the
	// cluster has filled it (and wins over it), before every start of the
	// node, Restart included. It is called on the test's goroutine.
	// Replacing WrapGossip takes the node off the Switch.
	Node func(name string, c *node.Config)
	// Args, if set, returns extra flags of a process node (after the
	// cluster's own, so they win), before every start of it.
	Args func(name string) []string
	// Host, if set, places a process node on a host of its own: the
	// command line prefix that runs it there and the address its
	// listeners bind (package netns), instead of 127.0.0.1.
	Host func(name string) (prefix []string, addr string)
	// ProductionTimers runs process nodes with the default gossip and
	// retry timers of homing serve (no --gossip-fast, --retry-min,
	// --retry-max, --local-retry), for measuring what an operator gets.
	ProductionTimers bool
	// LogLevel is the least level of the records in-process nodes write to
	// t.Log; the zero value is slog.LevelInfo. (Processes write everything
	// to their log file; the cluster prints its tail when the test fails.)
	LogLevel slog.Level
}

// Cluster is a dynamic Homing cluster on loopback, in the manner of
// hashicorp/raft's MakeCluster, with one of two runners (in-process
// nodes, or real processes): every node listens on 127.0.0.1:0, the
// backends share one fresh account store, gossip runs with GossipFast and a
// random secret (given to processes in a file, never on the command line).
//
// Methods fail the test with t.Fatalf when they cannot do their job (a
// node that does not start, a name that does not run, a cluster that does
// not settle): call them from the goroutine running the test that made the
// cluster. Names, Admin and SMTPAddr are also safe to call from other
// goroutines (a sender loop, say).
type Cluster struct {
	t          testing.TB
	opt        ClusterOptions
	secret     string
	secretFile string
	store      string // the shared account store of the backends
	sw         *cluster.Switch
	http       *http.Client // for every Admin client; closed at cleanup

	op sync.Mutex // serialises starts, stops and cuts

	mu      sync.Mutex
	order   []string // every node ever started, in first-start order
	members map[string]*clusterMember
	cut     bool // a Partition or Isolate is in effect (until Heal)
}

// clusterMember is one node of a Cluster, running or stopped.
type clusterMember struct {
	name    string
	role    mail.Role // "" = both
	args    []string  // Processes: the flags given to Add
	data    string    // data directory, the same for every start
	backend bool

	// Set while it runs (under Cluster.mu).
	node *node.Node // InProcess
	proc *Process   // Processes (kept while stopped, for restarts and logs)
	up   bool
}

// NewCluster makes an empty cluster (Add starts its nodes). The nodes are
// closed when the test ends (without leaving: nobody is left to care);
// when the test fails, every process node's log tail goes to the test log.
func NewCluster(t testing.TB, opt ClusterOptions) *Cluster {
	t.Helper()
	if opt.Partitions == 0 {
		opt.Partitions = 8
	}
	if opt.Runner == Processes && opt.Binary == "" {
		t.Fatal("cluster: the Processes runner needs ClusterOptions.Binary (BuildHoming)")
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
	if opt.Runner == Processes {
		c.secretFile = filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(c.secretFile, []byte(c.secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.dumpLogsOnFailure)
	}
	t.Cleanup(c.http.CloseIdleConnections) // after every node's closeAtEnd
	return c
}

// StartCluster starts opt.Frontends frontends (fe1, ...) and then
// opt.Backends backends (be1, ...), each joining the nodes started before
// it, and waits until every partition is owned by a backend that has it
// open (WaitSettled).
func StartCluster(t testing.TB, opt ClusterOptions) *Cluster {
	t.Helper()
	if opt.Frontends == 0 {
		opt.Frontends = 1
	}
	if opt.Backends == 0 {
		opt.Backends = 2
	}
	c := NewCluster(t, opt)
	for i := 1; i <= opt.Frontends; i++ {
		c.Add("fe"+strconv.Itoa(i), mail.RoleFrontend)
	}
	for i := 1; i <= opt.Backends; i++ {
		c.Add("be"+strconv.Itoa(i), mail.RoleBackend)
	}
	c.WaitSettled(t)
	return c
}

// Add starts a new node called name (a name not used before in this
// cluster) with role ("" = frontend and backend), joining the running
// nodes. args are extra flags of a process node (the Processes runner
// only). It does not wait for the placement to settle.
func (c *Cluster) Add(name string, role mail.Role, args ...string) {
	c.t.Helper()
	if len(args) > 0 && c.opt.Runner != Processes {
		c.t.Fatalf("cluster: flags for %s: the in-process runner takes ClusterOptions.Node instead", name)
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	_, exists := c.members[name]
	c.mu.Unlock()
	if exists {
		c.t.Fatalf("cluster: a node named %s exists already", name)
	}
	m := &clusterMember{name: name, role: role, args: args, data: c.t.TempDir(),
		backend: role == "" || role == mail.RoleBackend}
	if c.opt.Runner == InProcess {
		c.closeAtEnd(m)
	}
	c.mu.Lock()
	c.members[name] = m
	c.order = append(c.order, name)
	c.mu.Unlock()
	c.start(m)
}

// start starts m, joining every running node. The caller holds c.op.
func (c *Cluster) start(m *clusterMember) {
	c.t.Helper()
	seeds := c.gossipSeeds()
	if c.opt.Runner == Processes {
		c.startProcess(m, seeds)
	} else {
		c.startInProcess(m, seeds)
	}
	c.mu.Lock()
	m.up = true
	c.mu.Unlock()
}

func (c *Cluster) startInProcess(m *clusterMember, seeds []string) {
	c.t.Helper()
	cfg := TestConfig(c.t, m.name)
	cfg.Logger = tlog.New(c.t, m.name, tlog.MinLevel(c.opt.LogLevel))
	if m.role != "" {
		cfg.Roles = []mail.Role{m.role}
	}
	cfg.Store.DataDir = m.data
	cfg.Store.Partitions = c.opt.Partitions
	cfg.Store.AccountStore = c.store
	cfg.Cluster.Gossip = "127.0.0.1:0"
	cfg.Cluster.Addr = "127.0.0.1:0"
	cfg.Cluster.Secret = c.secret
	cfg.Cluster.GossipFast = true
	cfg.Cluster.Join = seeds
	cfg.Queue.LocalRetry = 300 * time.Millisecond
	wrap := c.sw.Wrap(m.name)
	cfg.Cluster.WrapGossip = func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport { return wrap(inner) }
	if c.opt.Node != nil {
		c.opt.Node(m.name, &cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		c.t.Fatalf("cluster: starting %s: %v", m.name, err)
	}
	c.mu.Lock()
	m.node = n
	m.backend = mail.HasRole(cfg.WithDefaults().Roles, mail.RoleBackend)
	c.mu.Unlock()
}

func (c *Cluster) startProcess(m *clusterMember, seeds []string) {
	c.t.Helper()
	host, prefix := "127.0.0.1", []string(nil)
	if c.opt.Host != nil {
		prefix, host = c.opt.Host(m.name)
	}
	args := []string{"--gossip", host + ":0", "--cluster-addr", host + ":0", "--secret-file", c.secretFile,
		"--partitions", strconv.Itoa(c.opt.Partitions), "--account-store", c.store,
		"--demo=false", "--log-level", "info"}
	if !c.opt.ProductionTimers {
		args = append(args, "--gossip-fast", "--retry-min", "200ms", "--retry-max", "1s", "--local-retry", "300ms")
	}
	if m.role != "" {
		args = append(args, "--roles", string(m.role))
	}
	if len(seeds) > 0 {
		args = append(args, "--join", joinList(seeds))
	}
	if c.opt.Host != nil {
		// Off loopback the admin API needs a token: the cluster's
		// secret (random per test) serves.
		args = append(args, "--smtp", host+":0", "--admin", host+":0", "--admin-token", c.adminToken())
	}
	if c.opt.Args != nil {
		args = append(args, c.opt.Args(m.name)...)
	}
	args = append(args, m.args...)
	c.mu.Lock()
	p := m.proc
	c.mu.Unlock()
	if p == nil {
		p = &Process{Name: m.name, Bin: c.opt.Binary, t: c.t, Data: m.data}
		c.t.Cleanup(p.Kill)
	}
	p.Args, p.Prefix = args, prefix
	p.Start()
	c.mu.Lock()
	m.proc = p
	c.mu.Unlock()
}

func joinList(seeds []string) string {
	out := ""
	for i, s := range seeds {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// gossipSeeds returns the gossip addresses of the running nodes.
func (c *Cluster) gossipSeeds() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var seeds []string
	for _, name := range c.order {
		if m := c.members[name]; m.up {
			if g := m.gossipAddr(); g != "" {
				seeds = append(seeds, g)
			}
		}
	}
	return seeds
}

func (m *clusterMember) gossipAddr() string {
	if m.node != nil {
		return m.node.GossipAddr()
	}
	if m.proc != nil {
		return m.proc.Gossip
	}
	return ""
}

// closeAtEnd closes an in-process node, if it runs, when the test ends,
// without leaving the cluster. It is registered right after the node is
// made, so that it runs before the node's logger stops writing to t.Log
// (cleanups run last registered first), and nodes close in the reverse
// order of their creation.
func (c *Cluster) closeAtEnd(m *clusterMember) {
	c.t.Cleanup(func() {
		c.op.Lock()
		defer c.op.Unlock()
		c.mu.Lock()
		n := m.node
		m.node, m.up = nil, false
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

// dumpLogsOnFailure writes the tail of every process node's log to the
// test log when the test failed (t.Fatal included), and each whole log to
// the directory HOMING_TEST_LOGS names, if set (TEST.NODE.log).
func (c *Cluster) dumpLogsOnFailure() {
	if !c.t.Failed() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	dir := os.Getenv("HOMING_TEST_LOGS")
	for _, name := range c.order {
		if p := c.members[name].proc; p != nil {
			c.t.Logf("--- %s log:\n%s", name, lastLines(p.Log(), 80))
			if dir != "" {
				f := filepath.Join(dir, strings.ReplaceAll(c.t.Name(), "/", "_")+"."+name+".log")
				if err := os.WriteFile(f, []byte(p.Log()), 0o644); err != nil {
					c.t.Logf("HOMING_TEST_LOGS: %v", err)
				}
			}
		}
	}
}

func lastLines(s string, n int) string {
	end := len(s)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' && i != len(s)-1 {
			n--
			if n == 0 {
				return s[i+1 : end]
			}
		}
	}
	return s
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

// running returns the member called name, failing the test unless it runs.
func (c *Cluster) running(name string) *clusterMember {
	c.t.Helper()
	m := c.member(name)
	c.mu.Lock()
	up := m.up
	c.mu.Unlock()
	if !up {
		c.t.Fatalf("cluster: node %s is not running", name)
	}
	return m
}

// AccountStore is the directory of the account store the backends share.
func (c *Cluster) AccountStore() string { return c.store }

// Node returns the running in-process node called name; it fails the test
// if no node of that name runs, or the runner is Processes.
func (c *Cluster) Node(name string) *node.Node {
	c.t.Helper()
	m := c.running(name)
	if m.node == nil {
		c.t.Fatalf("cluster: %s is a process: Node needs the in-process runner", name)
	}
	return m.node
}

// Process returns the process of node name (Processes runner), running or
// stopped.
func (c *Cluster) Process(name string) *Process {
	c.t.Helper()
	m := c.member(name)
	if m.proc == nil {
		c.t.Fatalf("cluster: %s is not a process node", name)
	}
	return m.proc
}

// Admin returns an admin API client for the running node called name.
func (c *Cluster) Admin(name string) *admin.Client {
	c.t.Helper()
	addr, _ := c.addrs(c.running(name))
	cl := admin.NewClient(addr, c.adminToken())
	cl.HTTP = c.http
	return cl
}

// adminToken is the nodes' admin token: none on loopback, the secret on
// hosts of their own (ClusterOptions.Host).
func (c *Cluster) adminToken() string {
	if c.opt.Host != nil {
		return c.secret
	}
	return ""
}

// SMTPAddr is the SMTP address of the running node called name.
func (c *Cluster) SMTPAddr(name string) string {
	c.t.Helper()
	_, smtp := c.addrs(c.running(name))
	return smtp
}

func (c *Cluster) addrs(m *clusterMember) (adminAddr, smtpAddr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.node != nil {
		return m.node.AdminAddr(), m.node.SMTPAddr()
	}
	return m.proc.Admin, m.proc.SMTP
}

// Endpoints returns the SMTP and admin addresses of node name and whether
// it runs, without failing the test: for goroutines (a sender loop) that
// must ride out a node's restart.
func (c *Cluster) Endpoints(name string) (smtpAddr, adminAddr string, running bool) {
	c.mu.Lock()
	m := c.members[name]
	c.mu.Unlock()
	if m == nil {
		return "", "", false
	}
	c.mu.Lock()
	running = m.up
	c.mu.Unlock()
	if !running {
		return "", "", false
	}
	adminAddr, smtpAddr = c.addrs(m)
	return smtpAddr, adminAddr, true
}

// Names returns the names of the running nodes, in the order they were
// first started.
func (c *Cluster) Names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, name := range c.order {
		if c.members[name].up {
			out = append(out, name)
		}
	}
	return out
}

// AddBackend starts a new backend called name that joins the running
// nodes, and waits until the placement has settled with it (unless a
// Partition or Isolate is in effect: then it returns once the node runs).
func (c *Cluster) AddBackend(name string) {
	c.t.Helper()
	c.Add(name, mail.RoleBackend)
	c.settleUnlessCut()
}

// Kill stops node name as a crash would: a process gets SIGKILL; an
// in-process node closes without leaving the cluster (its data is closed,
// so that another node can open its partitions). The others declare it
// dead through failure detection (about 2 s).
func (c *Cluster) Kill(name string) {
	c.t.Helper()
	c.halt(name, true)
}

// Stop closes node name gracefully: it leaves the cluster, and the others
// see it as "left" and take over its partitions.
func (c *Cluster) Stop(name string) {
	c.t.Helper()
	c.halt(name, false)
}

func (c *Cluster) halt(name string, abrupt bool) {
	c.t.Helper()
	c.op.Lock()
	defer c.op.Unlock()
	m := c.running(name)
	c.mu.Lock()
	n, p := m.node, m.proc
	m.node, m.up = nil, false
	c.mu.Unlock()
	switch {
	case p != nil && abrupt:
		p.Kill()
	case p != nil:
		p.Stop()
	case abrupt:
		if err := n.CloseAbruptly(); err != nil {
			c.t.Errorf("cluster: closing %s: %v", name, err)
		}
	default:
		if err := n.Close(); err != nil {
			c.t.Errorf("cluster: closing %s: %v", name, err)
		}
	}
}

// Signal sends sig to the process of node name (SIGSTOP freezes it: the
// others declare it dead while it holds its locks; SIGCONT thaws it).
func (c *Cluster) Signal(name string, sig syscall.Signal) {
	c.t.Helper()
	c.Process(name).Signal(sig)
}

// Restart starts node name again with the same name, data directory and
// role, on new ports, joining the running nodes (it is stopped gracefully
// first if it runs), and waits until the placement has settled (unless a
// Partition or Isolate is in effect: then it returns once the node runs).
// A node that was isolated stays isolated until Heal.
func (c *Cluster) Restart(name string) {
	c.t.Helper()
	m := c.member(name)
	c.mu.Lock()
	up := m.up
	c.mu.Unlock()
	if up {
		c.Stop(name)
	}
	c.op.Lock()
	c.start(m)
	c.op.Unlock()
	c.settleUnlessCut()
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

// inProcessOnly fails the test unless the runner is InProcess.
func (c *Cluster) inProcessOnly(what string) {
	c.t.Helper()
	if c.opt.Runner != InProcess {
		c.t.Fatalf("cluster: %s cuts gossip through the in-process Switch: it needs the in-process runner", what)
	}
}

// Isolate cuts every gossip link of node name (to nodes started later
// too) until Heal: it and the others soon believe each other dead.
// In-process runner only.
func (c *Cluster) Isolate(name string) {
	c.t.Helper()
	c.inProcessOnly("Isolate")
	c.member(name)
	c.mu.Lock()
	c.cut = true
	c.mu.Unlock()
	c.sw.Isolate(name)
}

// Partition cuts the gossip link between nodes a and b, both ways, until
// Heal. Where a third node reaches both, memberlist's indirect probes
// through it may keep a and b alive in each other's eyes; a two-node cut
// (or Isolate) always ends in "dead". In-process runner only.
func (c *Cluster) Partition(a, b string) {
	c.t.Helper()
	c.inProcessOnly("Partition")
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

// String names the cluster's running nodes, for failure messages.
func (c *Cluster) String() string { return fmt.Sprint(c.Names()) }
