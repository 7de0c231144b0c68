package cluster

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/tlog"
	"github.com/homing-mail/homing/testkit/wait"
)

// gossipNode is a Membership under test with its log.
type gossipNode struct {
	*Membership
	log *tlog.Lines // every line of its log
}

// gossipConfig is the configuration of test node name: loopback, port 0,
// Fast timers, a shared secret, cluster "test" with 8 partitions.
func gossipConfig(name string) Config {
	return Config{
		Name:     name,
		BindAddr: "127.0.0.1:0",
		Secret:   "a test secret that is long enough",
		Fast:     true,
		Meta: Meta{Cluster: "test", Version: "test", Roles: []mail.Role{mail.RoleBackend}, QueueMode: "locally",
			SMTP: "127.0.0.1:25", Partitions: 8},
	}
}

// startGossip starts test node name, with mod applied to its Config, and
// shuts it down when the test ends.
func startGossip(t testing.TB, name string, mod func(*Config)) *gossipNode {
	t.Helper()
	cfg := gossipConfig(name)
	if mod != nil {
		mod(&cfg)
	}
	l := new(tlog.Lines)
	cfg.Logger = tlog.New(t, cfg.Name, tlog.KeepIn(l))
	m, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return &gossipNode{Membership: m, log: l}
}

// joining returns a Config modifier that sets the seeds.
func joining(seeds ...string) func(*Config) {
	return func(c *Config) { c.Join = seeds }
}

// stateOf returns the state of name in m's view, "" when not listed.
func stateOf(m *Membership, name string) State {
	for _, mm := range m.Members() {
		if mm.Name == name {
			return mm.State
		}
	}
	return ""
}

// viewOf renders m's view for failure messages: "a=alive b=dead".
func viewOf(m *Membership) string {
	var parts []string
	for _, mm := range m.Members() {
		parts = append(parts, fmt.Sprintf("%s=%s", mm.Name, mm.State))
	}
	return strings.Join(parts, " ")
}

// namesOf is the names of the members m knows, whatever their state (a
// loaded machine may make a member of the cluster suspect for a moment;
// what an intrusion test asserts is who is in the view).
func namesOf(m *Membership) string {
	var names []string
	for _, mm := range m.Members() {
		names = append(names, mm.Name)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// waitStates waits until every node in views sees every name in want in
// the wanted state.
func waitStates(t testing.TB, timeout time.Duration, views []*gossipNode, want map[string]State) {
	t.Helper()
	wait.For(t, timeout, func() bool {
		for _, v := range views {
			for name, st := range want {
				if stateOf(v.Membership, name) != st {
					return false
				}
			}
		}
		return true
	}, "%s", wait.Lazy(func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "want %v; views:", want)
		for _, v := range views {
			fmt.Fprintf(&b, " [%s: %s]", v.LocalName(), viewOf(v.Membership))
		}
		return b.String()
	}))
}

// freeAddr returns a loopback host:port that was free a moment ago, for a
// node that must be named as a seed before it runs.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// received waits up to timeout for a signal on ch.
func received(ch <-chan struct{}, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}

// drain empties a coalescing signal channel.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}
