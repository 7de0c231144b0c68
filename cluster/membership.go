package cluster

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/homing-mail/homing/mail"
)

// ErrClosed is returned by UpdateMeta and Leave once the Membership has
// left or shut down.
var ErrClosed = mail.TemporaryError("cluster: membership is shut down")

// Membership is this node's view of the cluster: it runs memberlist,
// refuses foreign nodes, keeps the member table and tells its owner when
// the table changes or when the cluster declared this node dead.
//
// All methods are safe for concurrent use. Changed and SelfDeclaredDead
// return the same channel on every call; both coalesce (buffer 1), so a
// reader that is busy misses no change, only duplicates.
type Membership struct {
	name  string
	cfg   Config
	t     timers
	log   *slog.Logger
	ml    *memberlist.Memberlist
	addr  string // gossip host:port as advertised
	alone bool   // no secret, no seeds, not Insecure: refuse every other node

	changed  chan struct{}
	selfDead chan struct{}

	// lifeMu serialises UpdateMeta, Leave and Shutdown; closed is set
	// under it once memberlist is shut down.
	lifeMu sync.Mutex
	closed bool

	stop    chan struct{} // closed to stop the join goroutine
	joinWG  sync.WaitGroup
	joinErr atomic.Int64 // failed seed joins (tests watch it)
	joined  atomic.Bool  // a join of the seeds succeeded once

	conflicts atomic.Int64 // name conflicts seen (tests watch it)

	mu        sync.Mutex // guards the fields below; never held while calling memberlist
	meta      Meta
	metaBytes []byte
	left      bool // Leave was called
	members   map[string]*memberEntry
	refusals  map[string]time.Time // refused node name -> when last logged
}

// Start binds the gossip port, starts memberlist and starts joining
// cfg.Join in the background; it never waits for the seeds. The caller
// must end the Membership with Leave or Shutdown.
func Start(cfg Config) (*Membership, error) {
	host, port, err := cfg.check()
	if err != nil {
		return nil, err
	}
	cfg.Join = append([]string(nil), cfg.Join...)
	cfg.Meta = cfg.Meta.clone()
	if cfg.Meta.Started == 0 {
		cfg.Meta.Started = time.Now().UnixNano()
	}
	alone := cfg.Secret == "" && !cfg.Insecure && len(cfg.Join) == 0
	metaBytes, err := encodeMeta(cfg.Meta, metaFlags{alone: alone})
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}

	m := &Membership{
		name:      cfg.Name,
		cfg:       cfg,
		t:         cfg.timers(),
		log:       logger,
		alone:     alone,
		changed:   make(chan struct{}, 1),
		selfDead:  make(chan struct{}, 1),
		stop:      make(chan struct{}),
		meta:      cfg.Meta,
		metaBytes: metaBytes,
		members:   map[string]*memberEntry{},
		refusals:  map[string]time.Time{},
	}

	mc, err := cfg.memberlistConfig()
	if err != nil {
		return nil, err
	}
	mlLog := newMemberlistLog(m)
	mc.Logger = mlLog
	transport, err := newNetTransport(host, port, mlLog)
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip on %s: %w", cfg.BindAddr, err)
	}
	var nat memberlist.NodeAwareTransport = transport
	if cfg.WrapTransport != nil {
		nat = cfg.WrapTransport(nat)
	}
	mc.Transport = nat
	mc.BindAddr, mc.BindPort = host, transport.GetAutoBindPort()
	mc.AdvertisePort = mc.BindPort
	d := delegate{m}
	mc.Delegate, mc.Events, mc.Alive, mc.Merge, mc.Conflict = d, d, d, d, d

	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = nat.Shutdown()
		return nil, fmt.Errorf("cluster: starting gossip: %w", err)
	}
	m.ml = ml
	m.addr = ml.LocalNode().Address()

	switch {
	case cfg.Secret == "" && cfg.Insecure:
		m.log.Warn("INSECURE: gossip is neither encrypted nor authenticated (--insecure): anyone who reaches " +
			m.addr + " can join the cluster and inject members; set --secret on every node")
	case m.alone:
		m.log.Info("no --secret: this node runs alone and refuses every node that tries to join it " +
			"(set the same --secret on every node to form a cluster)")
	}
	m.log.Info("gossip started", "addr", m.addr, "seeds", strings.Join(cfg.Join, ","), "encrypted", cfg.Secret != "")

	m.joinWG.Add(1)
	go m.joinLoop()
	return m, nil
}

// newNetTransport binds memberlist's UDP+TCP transport; with port 0 the TCP
// port the kernel picks may be taken for UDP, so that is retried.
func newNetTransport(host string, port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	var last error
	tries := 1
	if port == 0 {
		tries = 10
	}
	for range tries {
		t, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{host}, BindPort: port, Logger: logger,
		})
		if err == nil {
			return t, nil
		}
		last = err
	}
	return nil, last
}

// LocalName returns this node's name.
func (m *Membership) LocalName() string { return m.name }

// GossipAddr returns the gossip host:port this node advertises (the bound
// port when Config.BindAddr had port 0).
func (m *Membership) GossipAddr() string { return m.addr }

// Met reports whether this node has met the cluster: it has no seeds,
// or a join of them succeeded once (its view then has every member the
// seeds knew). Before that, a view with no other member says nothing.
func (m *Membership) Met() bool { return len(m.cfg.Join) == 0 || m.joined.Load() }

// Changed returns a coalescing signal (buffer 1): the member table changed
// (a member joined, became suspect, died, left, came back, or some member's
// Meta changed, this node's own included). Read Members after it fires.
func (m *Membership) Changed() <-chan struct{} { return m.changed }

// SelfDeclaredDead returns a coalescing signal (buffer 1): another member
// declared this node dead (seen in the member list of a join, in another
// member's push/pull state, or in a dead message about us). memberlist has
// already refuted it, so this node stays a member; the node must close its
// partitions at once, since the cluster may have given them to others.
// After a symmetric network partition both sides may be signalled.
func (m *Membership) SelfDeclaredDead() <-chan struct{} { return m.selfDead }

// Meta returns this node's current metadata.
func (m *Membership) Meta() Meta {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.meta.clone()
}

// UpdateMeta changes this node's metadata with f and gossips it: it
// returns once the update has been sent to the other members (or after a
// few seconds; the update still spreads with the next push/pull). f gets a
// copy; it must not call UpdateMeta, Leave or Shutdown (updates are
// serialised). Cluster, Partitions and Started cannot change (an error
// wrapping ErrMembershipConfig says so), nor can the encoding grow past 512
// bytes (ErrMetaTooLarge); a refused update changes nothing.
func (m *Membership) UpdateMeta(f func(*Meta)) error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.closed {
		return ErrClosed
	}
	cur := m.Meta() // only UpdateMeta and Leave write m.meta, both under lifeMu
	next := cur.clone()
	f(&next)
	switch {
	case next.Cluster != cur.Cluster:
		return fmt.Errorf("%w: the cluster name cannot change at run time", ErrMembershipConfig)
	case next.Partitions != cur.Partitions:
		return fmt.Errorf("%w: the partition count cannot change at run time", ErrMembershipConfig)
	case next.Started != cur.Started:
		return fmt.Errorf("%w: the start time cannot change", ErrMembershipConfig)
	}
	b, err := encodeMeta(next, metaFlags{alone: m.alone})
	if err != nil {
		return err
	}
	next = next.clone() // f may keep a reference to the Roles it set
	m.mu.Lock()
	m.meta, m.metaBytes = next, b
	m.mu.Unlock()

	if err := m.ml.UpdateNode(m.t.update); err != nil {
		m.log.Warn("metadata update not yet confirmed sent; it spreads with the next push/pull", "err", err)
	}
	// memberlist has called NotifyUpdate for this node: the member table
	// has the new Meta and Changed has fired.
	return nil
}

// Leave leaves the cluster gracefully and stops: the others see this node
// as "left", not dead. It first tells every live member over TCP that it
// is leaving (membership_leaving.go; waiting at most a third of timeout),
// then gossips metadata marked "leaving" (waiting at most half of timeout
// for the broadcast), then memberlist's leave message (waiting at most the
// rest), then shuts memberlist down; timeout
// <= 0 means 5 s. Shutdown after Leave does nothing. The error says when a
// broadcast was not confirmed in time (the node has stopped anyway; the
// others may then see it dead).
func (m *Membership) Leave(timeout time.Duration) error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	m.stopJoining()
	deadline := time.Now().Add(timeout)

	var errs []error
	m.mu.Lock()
	started := m.meta.Started
	m.mu.Unlock()
	if told, members := m.sendLeavingNotices(started, time.Now().Add(timeout/3)); told < members {
		m.log.Warn("not every member got the leaving notice; those that miss the leave's gossip too will see this node dead",
			"told", told, "members", members)
	}
	m.mu.Lock()
	b, err := encodeMeta(m.meta, metaFlags{leaving: true, alone: m.alone})
	if err == nil {
		m.metaBytes = b
	}
	m.left = true
	m.mu.Unlock()
	if err != nil {
		m.log.Warn("metadata too large for the leaving marker: the others will see this node dead, not left")
	} else if err := m.ml.UpdateNode(timeout / 2); err != nil {
		errs = append(errs, fmt.Errorf("cluster: leaving: %w", err))
	}
	if err := m.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		errs = append(errs, fmt.Errorf("cluster: leaving: %w", err))
	}
	m.log.Info("left the cluster")
	errs = append(errs, m.shutdownLocked(StateLeft))
	return errors.Join(errs...)
}

// Shutdown stops gossip without leaving, like a crash: the others declare
// this node dead after the suspicion timeout. It waits for Membership's
// goroutines. Calling it again, or after Leave, does nothing.
func (m *Membership) Shutdown() error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.closed {
		return nil
	}
	m.stopJoining()
	return m.shutdownLocked(StateDead)
}

// stopJoining stops the join goroutine and waits for it (lifeMu held).
func (m *Membership) stopJoining() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.joinWG.Wait()
}

// shutdownLocked shuts memberlist down and marks this node state in its
// own table (lifeMu held).
func (m *Membership) shutdownLocked(state State) error {
	m.closed = true
	err := m.ml.Shutdown()
	m.mu.Lock()
	if e, ok := m.members[m.name]; ok {
		e.m.State = state
		e.since = time.Now()
	}
	m.mu.Unlock()
	m.signalChanged()
	if err != nil {
		return fmt.Errorf("cluster: stopping gossip: %w", err)
	}
	return nil
}

// signalChanged fires Changed without blocking.
func (m *Membership) signalChanged() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// declaredDead fires SelfDeclaredDead without blocking, and logs why.
func (m *Membership) declaredDead(why string) {
	m.log.Warn("the cluster declared this node dead: " + why)
	select {
	case m.selfDead <- struct{}{}:
	default:
	}
}

// isSelf reports whether name and started name this process.
func (m *Membership) isSelf(name string, started int64) bool {
	if name != m.name {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return started == m.meta.Started && !m.left
}

// admit returns a *RefusedError when peer may not be a member.
func (m *Membership) admit(peer *memberlist.Node) error {
	if peer.Name == m.name {
		return nil
	}
	refuse := func(format string, args ...any) error {
		return &RefusedError{Node: peer.Name, Addr: peer.Address(), Reason: fmt.Sprintf(format, args...)}
	}
	if m.alone {
		return refuse("this node has no --secret and no --insecure, so it runs alone (set the same --secret on every node)")
	}
	meta, flags, err := decodeMeta(peer.Meta)
	if err != nil {
		return refuse("unreadable metadata: %v", err)
	}
	if flags.alone {
		return refuse("it has no --secret and no --insecure, so it runs alone (set the same --secret on every node)")
	}
	m.mu.Lock()
	cluster, partitions := m.meta.Cluster, m.meta.Partitions
	m.mu.Unlock()
	if meta.Cluster != cluster {
		return refuse("cluster name %q != %q", meta.Cluster, cluster)
	}
	if meta.Partitions != partitions {
		return refuse("partition count %d != %d", meta.Partitions, partitions)
	}
	return nil
}

// logRefusal logs a refusal at WARN, at most once per node per
// timers.refusalLog.
func (m *Membership) logRefusal(err error) {
	var r *RefusedError
	if !errors.As(err, &r) {
		return
	}
	now := time.Now()
	m.mu.Lock()
	last, seen := m.refusals[r.Node]
	if seen && now.Sub(last) < m.t.refusalLog {
		m.mu.Unlock()
		return
	}
	if len(m.refusals) >= 1024 { // names come from the network: bound the map
		clear(m.refusals)
	}
	m.refusals[r.Node] = now
	m.mu.Unlock()
	m.log.Warn(r.Error())
}
