package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

// gossipLog is a slog handler for one test node: every record goes to t.Log
// (until the test ends) and is kept, so tests can wait for a log line.
type gossipLog struct {
	t      testing.TB
	prefix string
	attrs  []slog.Attr
	shared *gossipLogLines
}

type gossipLogLines struct {
	mu    sync.Mutex
	done  bool
	lines []string
}

func newGossipLog(t testing.TB, prefix string) *gossipLog {
	l := &gossipLog{t: t, prefix: prefix, shared: &gossipLogLines{}}
	t.Cleanup(func() {
		l.shared.mu.Lock()
		l.shared.done = true
		l.shared.mu.Unlock()
	})
	return l
}

func (l *gossipLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *gossipLog) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	h := slog.NewTextHandler(&b, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	})
	if err := h.WithAttrs(l.attrs).Handle(context.Background(), r); err != nil {
		return err
	}
	line := strings.TrimRight(b.String(), "\n")
	l.shared.mu.Lock()
	defer l.shared.mu.Unlock()
	if !l.shared.done {
		l.shared.lines = append(l.shared.lines, line)
		l.t.Logf("[%s] %s", l.prefix, line)
	}
	return nil
}

func (l *gossipLog) WithAttrs(as []slog.Attr) slog.Handler {
	c := *l
	c.attrs = append(append([]slog.Attr(nil), l.attrs...), as...)
	return &c
}

func (l *gossipLog) WithGroup(string) slog.Handler { return l } // unused by Membership

// count returns how many kept lines contain every one of parts.
func (l *gossipLog) count(parts ...string) int {
	l.shared.mu.Lock()
	defer l.shared.mu.Unlock()
	n := 0
next:
	for _, line := range l.shared.lines {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// gossipNode is a Membership under test with its log.
type gossipNode struct {
	*Membership
	log *gossipLog
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
	l := newGossipLog(t, cfg.Name)
	cfg.Logger = slog.New(l)
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

// eventually polls cond (every few milliseconds, doubling to 50 ms) until
// it holds, and fails the test with msg when it does not within timeout.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, msg())
		}
		timer := time.NewTimer(wait)
		<-timer.C // polling interval; cond decides, not the clock
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// waitStates waits until every node in views sees every name in want in
// the wanted state.
func waitStates(t testing.TB, timeout time.Duration, views []*gossipNode, want map[string]State) {
	t.Helper()
	eventually(t, timeout, func() bool {
		for _, v := range views {
			for name, st := range want {
				if stateOf(v.Membership, name) != st {
					return false
				}
			}
		}
		return true
	}, func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "want %v; views:", want)
		for _, v := range views {
			fmt.Fprintf(&b, " [%s: %s]", v.LocalName(), viewOf(v.Membership))
		}
		return b.String()
	})
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
