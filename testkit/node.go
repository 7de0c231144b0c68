package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit/dnstest"
	"github.com/homing-mail/homing/testkit/tlog"
)

// NodeOption changes the configuration of a test node.
type NodeOption func(*node.Config)

// WithConfig applies f to the node's configuration.
func WithConfig(f func(*node.Config)) NodeOption { return NodeOption(f) }

// TestConfig is a node configuration for tests: loopback port 0 for every
// listener, a fresh data directory, timers shortened to seconds, the log
// in t.Log, and a DNS server of its own on loopback with an empty zone
// (dnstest; never the system's resolver): a test that needs records
// starts its own server and sets Trust.DNS.
func TestConfig(t testing.TB, name string) node.Config {
	return node.Config{
		Name:     name,
		Domains:  []string{"example.test"},
		Hostname: name + ".example.test",
		Logger:   tlog.New(t, name),
		Listen:   node.Listen{SMTP: "127.0.0.1:0"},
		Admin:    node.Admin{Addr: "127.0.0.1:0"},
		Store:    node.Store{DataDir: t.TempDir(), Partitions: 4},
		Routing:  node.Routing{Routes: map[string]string{}},
		Trust:    node.Trust{DNS: dnstest.Start(t, nil).Addr()},
		Queue: actors.Config{
			MinBackoff:       200 * time.Millisecond,
			MaxBackoff:       time.Second,
			MaxLifetime:      time.Hour,
			OverQuotaTimeout: time.Hour,
			AccountIdle:      time.Minute,
		},
	}
}

// StartNode starts an in-process node, closed when the test ends.
func StartNode(t testing.TB, name string, opts ...NodeOption) *node.Node {
	t.Helper()
	cfg := TestConfig(t, name)
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting node %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("closing node %s: %v", name, err)
		}
	})
	return n
}
