package cluster

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/ratelog"
	"github.com/homing-mail/homing/testkit/wait"
)

func TestJoinThreeNodesSeedStartsLate(t *testing.T) {
	seedAddr := freeAddr(t)
	b := startGossip(t, "b", joining(seedAddr))
	c := startGossip(t, "c", joining(seedAddr))

	// Start returned although the seed is not up; the joiners keep trying.
	wait.For(t, 5*time.Second, func() bool { return b.joinErr.Load() >= 2 && c.joinErr.Load() >= 2 },
		"joiners did not retry")
	if got := stateOf(b.Membership, "a"); got != "" {
		t.Fatalf("b lists the seed before it runs: %s", got)
	}

	a := startGossip(t, "a", func(c *Config) { c.BindAddr = seedAddr })
	all := []*gossipNode{a, b, c}
	waitStates(t, 5*time.Second, all, map[string]State{"a": StateAlive, "b": StateAlive, "c": StateAlive})

	for _, n := range all {
		ms := n.Members()
		if len(ms) != 3 || ms[0].Name != "a" || ms[1].Name != "b" || ms[2].Name != "c" {
			t.Fatalf("%s: members not sorted by name or not 3: %v", n.LocalName(), viewOf(n.Membership))
		}
		for _, m := range ms {
			if m.Self != (m.Name == n.LocalName()) {
				t.Fatalf("%s: Self wrong for %s", n.LocalName(), m.Name)
			}
			if m.Meta.Cluster != "test" || m.Meta.Partitions != 8 || !m.Meta.HasRole(mail.RoleBackend) || m.Meta.Started == 0 {
				t.Fatalf("%s: meta of %s not gossiped: %+v", n.LocalName(), m.Name, m.Meta)
			}
		}
	}
	if got := a.Members()[0].Addr; got != seedAddr || a.GossipAddr() != seedAddr {
		t.Fatalf("seed address: member %s, GossipAddr %s, want %s", got, a.GossipAddr(), seedAddr)
	}
	if got := b.Members()[1].Addr; got != b.GossipAddr() || !strings.HasPrefix(got, "127.0.0.1:") {
		t.Fatalf("b's own address %q, GossipAddr %q", got, b.GossipAddr())
	}
}

func TestSeedHostNameGoesThroughResolver(t *testing.T) {
	a := startGossip(t, "a", nil)
	_, port, _ := strings.Cut(a.GossipAddr(), ":")
	r := &stubResolver{addrs: map[string][]netip.Addr{"seed.test": {netip.MustParseAddr("127.0.0.1")}}}
	b := startGossip(t, "b", func(c *Config) {
		c.Join = []string{"nowhere.test:" + port, "seed.test:" + port}
		c.Resolver = r
	})
	waitStates(t, 5*time.Second, []*gossipNode{a, b}, map[string]State{"a": StateAlive, "b": StateAlive})
	if r.asked("seed.test") == 0 || r.asked("nowhere.test") == 0 {
		t.Fatalf("resolver not asked for both seeds")
	}
}

type stubResolver struct {
	addrs   map[string][]netip.Addr
	mu      sync.Mutex
	queries []string
}

func (r *stubResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, host)
	if as, ok := r.addrs[host]; ok {
		return as, nil
	}
	return nil, errors.New("no such host (stub)")
}

func (r *stubResolver) asked(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.queries {
		if q == host {
			n++
		}
	}
	return n
}

func TestWrongSecretCannotJoin(t *testing.T) {
	a := startGossip(t, "a", nil)
	b := startGossip(t, "b", joining(a.GossipAddr()))
	waitStates(t, 5*time.Second, []*gossipNode{a, b}, map[string]State{"a": StateAlive, "b": StateAlive})

	other := startGossip(t, "other", func(c *Config) {
		c.Join = []string{a.GossipAddr(), b.GossipAddr()}
		c.Secret = "another secret, just as long"
	})
	plain := startGossip(t, "plain", func(c *Config) {
		c.Join = []string{a.GossipAddr(), b.GossipAddr()}
		c.Secret = ""
		c.Insecure = true
	})
	// Each has tried (and failed) several times: both seeds, each round.
	wait.For(t, 10*time.Second, func() bool { return other.joinErr.Load() >= 4 && plain.joinErr.Load() >= 4 },
		"outsiders did not keep trying")
	for _, n := range []*gossipNode{a, b} {
		if got := namesOf(n.Membership); got != "a b" {
			t.Fatalf("%s lets an outsider in: %s", n.LocalName(), viewOf(n.Membership))
		}
	}
	for _, n := range []*gossipNode{other, plain} {
		if ms := n.Members(); len(ms) != 1 || !ms[0].Self {
			t.Fatalf("%s got into the cluster: %s", n.LocalName(), viewOf(n.Membership))
		}
	}
	// The cluster saw the attempts and refused them at the crypto layer.
	if a.log.Count("crypt") == 0 {
		t.Fatalf("a logged no refused gossip")
	}
}

func TestForeignClusterAndPartitionCountRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(*Meta)
		reason string
	}{
		{"cluster", func(m *Meta) { m.Cluster = "elsewhere" }, `cluster name \"elsewhere\" != \"test\"`},
		{"partitions", func(m *Meta) { m.Partitions = 16 }, "partition count 16 != 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startGossip(t, "a", nil)
			b := startGossip(t, "b", joining(a.GossipAddr()))
			waitStates(t, 5*time.Second, []*gossipNode{a, b}, map[string]State{"a": StateAlive, "b": StateAlive})
			// y has the cluster's gossip key (derived from the secret
			// and the cluster name "test"), so only the delegates stand
			// between it and the cluster.
			y := startGossip(t, "y", func(c *Config) {
				c.Join = []string{a.GossipAddr()}
				tc.mod(&c.Meta)
				if c.Meta.Cluster != "test" {
					c.tune = func(mc *memberlist.Config) {
						mc.SecretKey, _ = gossipKey(c.Secret, "test")
					}
				}
			})
			wait.For(t, 10*time.Second, func() bool { return y.joinErr.Load() >= 3 },
				"y did not keep trying")
			wait.For(t, 5*time.Second, func() bool { return a.log.Count(`msg="refusing node y`, tc.reason) > 0 },
				"a did not log the refusal of y with %s", tc.reason)
			if y.log.Count(`msg="refusing node `, "!=") == 0 {
				t.Errorf("y did not log its refusal of the cluster")
			}
			if n := a.log.Count(`msg="refusing node y`); n != 1 {
				t.Errorf("refusal of y logged %d times, want once a minute", n)
			}
			for _, n := range []*gossipNode{a, b} {
				if got := namesOf(n.Membership); got != "a b" {
					t.Fatalf("%s lets a foreign node in: %s", n.LocalName(), viewOf(n.Membership))
				}
			}
			if ms := y.Members(); len(ms) != 1 {
				t.Fatalf("y joined a foreign cluster: %s", viewOf(y.Membership))
			}
		})
	}
}

func TestAloneNodeRefusesOthers(t *testing.T) {
	a := startGossip(t, "a", func(c *Config) { c.Secret = "" })
	x := startGossip(t, "x", func(c *Config) {
		c.Join = []string{a.GossipAddr()}
		c.Secret = ""
		c.Insecure = true
	})
	wait.For(t, 5*time.Second, func() bool { return a.log.Count(`msg="refusing node x`, "--secret") > 0 },
		"a did not refuse x")
	wait.For(t, 5*time.Second, func() bool { return x.joinErr.Load() >= 3 },
		"x did not keep trying")
	wait.For(t, 5*time.Second, func() bool { return x.log.Count(`msg="refusing node a`, "runs alone") > 0 },
		"x did not refuse a")
	if got := viewOf(a.Membership); got != "a=alive" {
		t.Fatalf("a runs alone but lists %s", got)
	}
	if got := viewOf(x.Membership); got != "x=alive" {
		t.Fatalf("x joined a node that runs alone: %s", got)
	}
	if x.log.Count("INSECURE") != 1 {
		t.Fatalf("x logged the insecure warning %d times, want once", x.log.Count("INSECURE"))
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	good := gossipConfig("a")
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want error
	}{
		{"no secret with seeds", func(c *Config) { c.Secret = ""; c.Join = []string{"127.0.0.1:1"} }, ErrInsecure},
		{"no name", func(c *Config) { c.Name = "" }, ErrMembershipConfig},
		{"host name bind", func(c *Config) { c.BindAddr = "localhost:0" }, ErrMembershipConfig},
		{"no port", func(c *Config) { c.BindAddr = "127.0.0.1" }, ErrMembershipConfig},
		{"bad seed", func(c *Config) { c.Join = []string{"127.0.0.1"} }, ErrMembershipConfig},
		{"seed port 0", func(c *Config) { c.Join = []string{"127.0.0.1:0"} }, ErrMembershipConfig},
		{"no partitions", func(c *Config) { c.Meta.Partitions = 0 }, ErrMembershipConfig},
		{"meta too large", func(c *Config) { c.Meta.Version = strings.Repeat("v", 600) }, ErrMetaTooLarge},
	} {
		cfg := good
		tc.mod(&cfg)
		m, err := Start(cfg)
		if err == nil {
			_ = m.Shutdown()
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	if !strings.Contains(ErrInsecure.Error(), "--secret") || !strings.Contains(ErrInsecure.Error(), "--insecure") {
		t.Errorf("ErrInsecure does not say what to set: %v", ErrInsecure)
	}
}

func TestUpdateMetaPropagates(t *testing.T) {
	a := startGossip(t, "a", nil)
	b := startGossip(t, "b", joining(a.GossipAddr()))
	c := startGossip(t, "c", joining(a.GossipAddr()))
	all := []*gossipNode{a, b, c}
	waitStates(t, 5*time.Second, all, map[string]State{"a": StateAlive, "b": StateAlive, "c": StateAlive})
	drain(a.Changed())

	start := time.Now()
	if err := b.UpdateMeta(func(m *Meta) { m.QueueMode = "remotely"; m.Roles = []mail.Role{mail.RoleFrontend} }); err != nil {
		t.Fatal(err)
	}
	if got := b.Meta(); got.QueueMode != "remotely" || got.HasRole(mail.RoleBackend) {
		t.Fatalf("b.Meta() = %+v", got)
	}
	if !received(a.Changed(), 2*time.Second) {
		t.Fatalf("a's Changed did not fire for b's update")
	}
	wait.For(t, 2*time.Second, func() bool {
		for _, n := range all {
			for _, m := range n.Members() {
				if m.Name == "b" && (m.Meta.QueueMode != "remotely" || m.Meta.HasRole(mail.RoleBackend)) {
					return false
				}
			}
		}
		return true
	}, "b's queue mode not seen everywhere")
	t.Logf("queue mode change seen by all within %v", time.Since(start))

	// What cannot change is refused and changes nothing.
	for _, f := range []func(*Meta){
		func(m *Meta) { m.Cluster = "other" },
		func(m *Meta) { m.Partitions = 9 },
		func(m *Meta) { m.Started++ },
		func(m *Meta) { m.Static = strings.Repeat("1,", 300) },
	} {
		if err := b.UpdateMeta(f); err == nil {
			t.Fatalf("UpdateMeta accepted a forbidden change")
		}
	}
	if got := b.Meta(); got.Cluster != "test" || got.Partitions != 8 || got.Static != "" {
		t.Fatalf("refused update changed Meta: %+v", got)
	}
}

func TestLeaveIsSeenAsLeft(t *testing.T) {
	a := startGossip(t, "a", nil)
	b := startGossip(t, "b", joining(a.GossipAddr()))
	c := startGossip(t, "c", joining(a.GossipAddr()))
	waitStates(t, 5*time.Second, []*gossipNode{a, b, c}, map[string]State{"a": StateAlive, "b": StateAlive, "c": StateAlive})

	if err := c.Leave(2 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	waitStates(t, 3*time.Second, []*gossipNode{a, b}, map[string]State{"c": StateLeft})
	if got := stateOf(c.Membership, "c"); got != StateLeft {
		t.Fatalf("c sees itself %q after Leave", got)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatalf("Shutdown after Leave: %v", err)
	}
	if err := c.UpdateMeta(func(*Meta) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("UpdateMeta after Leave: %v", err)
	}
	if err := c.Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Leave: %v", err)
	}
	// A left member stays left: nothing later turns it dead.
	for range 3 {
		drain(a.Changed())
		received(a.Changed(), 300*time.Millisecond)
		if got := stateOf(a.Membership, "c"); got != StateLeft {
			t.Fatalf("c turned %q in a's view", got)
		}
	}
}

func TestShutdownIsSeenAsDeadAndTheNameCanReturn(t *testing.T) {
	a := startGossip(t, "a", nil)
	b := startGossip(t, "b", joining(a.GossipAddr()))
	c := startGossip(t, "c", joining(a.GossipAddr()))
	waitStates(t, 5*time.Second, []*gossipNode{a, b, c}, map[string]State{"a": StateAlive, "b": StateAlive, "c": StateAlive})
	started := c.Meta().Started

	crash := time.Now()
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitStates(t, 4*time.Second, []*gossipNode{a, b}, map[string]State{"c": StateDead})
	t.Logf("crash declared dead by both others after %v", time.Since(crash))
	for _, m := range a.Members() {
		if m.Name == "c" && m.Meta.Started != started {
			t.Fatalf("dead c lost its meta: %+v", m.Meta)
		}
	}

	// A new process under the same name (and a new port) is alive again.
	c2 := startGossip(t, "c", joining(a.GossipAddr()))
	waitStates(t, 5*time.Second, []*gossipNode{a, b, c2}, map[string]State{"a": StateAlive, "b": StateAlive, "c": StateAlive})
	for _, m := range a.Members() {
		if m.Name == "c" && (m.Addr != c2.GossipAddr() || m.Meta.Started == started) {
			t.Fatalf("a still has the old c: %+v", m)
		}
	}
	// The restarted c must not take the old process's death for its own.
	if received(c2.SelfDeclaredDead(), 500*time.Millisecond) {
		t.Fatalf("restarted c signalled SelfDeclaredDead for its predecessor's death")
	}
}

func TestDuplicateNameIsAConflict(t *testing.T) {
	a := startGossip(t, "a", nil)
	b := startGossip(t, "b", joining(a.GossipAddr()))
	waitStates(t, 5*time.Second, []*gossipNode{a, b}, map[string]State{"a": StateAlive, "b": StateAlive})

	b2 := startGossip(t, "b", joining(a.GossipAddr()))
	wait.For(t, 5*time.Second, func() bool { return a.conflicts.Load() > 0 || b2.conflicts.Load() > 0 },
		"no conflict reported")
	wait.For(t, 5*time.Second, func() bool { return a.log.Count("names must be unique")+b2.log.Count("names must be unique") > 0 },
		"conflict not logged")
	for _, m := range a.Members() {
		if m.Name == "b" && m.Addr != b.GossipAddr() {
			t.Fatalf("the newcomer replaced b in a's view: %+v", m)
		}
	}
}

func TestSuspectIsReported(t *testing.T) {
	sw := NewSwitch()
	slow := func(c *Config) {
		c.WrapTransport = sw.Wrap(c.Name)
		// A long suspicion so that the suspect state lasts.
		c.tune = func(mc *memberlist.Config) { mc.SuspicionMult = 200 }
	}
	a := startGossip(t, "a", slow)
	b := startGossip(t, "b", func(c *Config) { slow(c); c.Join = []string{a.GossipAddr()} })
	waitStates(t, 5*time.Second, []*gossipNode{a, b}, map[string]State{"a": StateAlive, "b": StateAlive})

	sw.Isolate("b")
	waitStates(t, 5*time.Second, []*gossipNode{a}, map[string]State{"b": StateSuspect})
	if ms := a.Members(); !ms[1].State.Live() {
		t.Fatalf("a suspect member must still count as live: %v", ms[1])
	}
	sw.Heal()
	waitStates(t, 5*time.Second, []*gossipNode{a, b}, map[string]State{"a": StateAlive, "b": StateAlive})
}

func TestSelfDeclaredDeadFromPushPullState(t *testing.T) {
	a := startGossip(t, "a", nil)
	d := delegate{a.Membership}
	started := a.Meta().Started
	drain(a.SelfDeclaredDead())

	for _, in := range []string{
		`{"d":[{"n":"a","t":1}]}`,                                      // an earlier process of the same name
		`{"d":[{"n":"b","t":` + strconv.FormatInt(started, 10) + `}]}`, // someone else
		`not json`, ``,
	} {
		d.MergeRemoteState([]byte(in), false)
		if signalled(a.SelfDeclaredDead()) {
			t.Fatalf("signalled for %q", in)
		}
	}
	d.MergeRemoteState([]byte(`{"d":[{"n":"b","t":5},{"n":"a","t":`+strconv.FormatInt(started, 10)+`}]}`), false)
	if !signalled(a.SelfDeclaredDead()) {
		t.Fatalf("not signalled when another member holds this process dead")
	}

	// A join's member list.
	meta, _ := EncodeMeta(a.Meta())
	if err := d.NotifyMerge([]*memberlist.Node{{Name: "a", Meta: meta, State: memberlist.StateDead}}); err != nil {
		t.Fatal(err)
	}
	if !signalled(a.SelfDeclaredDead()) {
		t.Fatalf("not signalled for a join list that holds us dead")
	}
	if err := d.NotifyMerge([]*memberlist.Node{{Name: "a", Meta: meta, State: memberlist.StateAlive}}); err != nil {
		t.Fatal(err)
	}
	if signalled(a.SelfDeclaredDead()) {
		t.Fatalf("signalled for a join list that holds us alive")
	}

	// A dead message about us, as memberlist logs its refutation: not
	// trusted in the first refuteGrace of the process (it is usually about
	// a predecessor of the same name), trusted after.
	_, _ = memberlistLogWriter{m: a.Membership, throttle: ratelog.NewThrottle(time.Second, time.Now)}.Write([]byte("[WARN] memberlist: Refuting a dead message (from: b)\n"))
	if signalled(a.SelfDeclaredDead()) {
		t.Fatalf("signalled for a refuted dead message within refuteGrace of the start")
	}
	a.Membership.mu.Lock()
	a.Membership.meta.Started -= int64(2 * refuteGrace)
	a.Membership.mu.Unlock()
	_, _ = memberlistLogWriter{m: a.Membership, throttle: ratelog.NewThrottle(time.Second, time.Now)}.Write([]byte("[WARN] memberlist: Refuting a dead message (from: b)\n"))
	if !signalled(a.SelfDeclaredDead()) {
		t.Fatalf("not signalled for a refuted dead message")
	}
}

// signalled reports whether ch holds a signal now (the delegate methods
// signal synchronously, so no wait is needed).
func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
