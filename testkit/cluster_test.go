//go:build !race

// In-process clusters run several protoactor remotes in one process, which
// has data races inside protoactor (see Cluster): these tests are built
// without -race only. `make test` runs `go test ./testkit` without -race
// for them.

package testkit

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit/failtb"
	"github.com/homing-mail/homing/testkit/wait"
)

// owned returns the partitions each node owns in name's view.
func owned(t *testing.T, c *Cluster, name string) map[string][]int {
	t.Helper()
	v, err := c.Admin(name).Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int{}
	for _, p := range v.Partitions {
		out[p.Owner] = append(out[p.Owner], p.ID)
	}
	return out
}

func TestClusterStartsSettledWithTheAskedShape(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Frontends: 2, Backends: 2, Partitions: 6})
	if got := strings.Join(c.Names(), ","); got != "fe1,fe2,be1,be2" {
		t.Fatalf("Names() = %s, want fe1,fe2,be1,be2", got)
	}
	own := owned(t, c, "fe2")
	if len(own["be1"])+len(own["be2"]) != 6 || len(own) != 2 {
		t.Fatalf("partitions owned %v, want all 6 on be1 and be2", own)
	}
	for _, fe := range []string{"fe1", "fe2"} {
		ps, err := c.Admin(fe).Partitions(context.Background())
		if err != nil || len(ps) != 0 {
			t.Fatalf("frontend %s runs partitions %v (err %v)", fe, ps, err)
		}
	}
	for _, be := range []string{"be1", "be2"} {
		ps, err := c.Admin(be).Partitions(context.Background())
		if err != nil || len(ps) != len(own[be]) {
			t.Fatalf("%s runs %v (err %v), owns %v", be, ps, err, own[be])
		}
		for _, p := range ps {
			if !p.Open {
				t.Fatalf("%s has partition %d not open after StartCluster", be, p.ID)
			}
		}
	}
}

func TestClusterNodeTweakAppliesToEveryNode(t *testing.T) {
	var seen []string
	c := StartCluster(t, ClusterOptions{Backends: 1, Node: func(name string, cfg *node.Config) {
		seen = append(seen, name)
		cfg.Domains = []string{"tweaked.test"}
	}})
	if got := strings.Join(seen, ","); got != "fe1,be1" {
		t.Fatalf("Node called for %s, want fe1,be1", got)
	}
	if _, err := c.Admin("fe1").CreateAccount(context.Background(), admin.CreateAccount{Address: "a@tweaked.test", Password: "password-123"}); err != nil {
		t.Fatalf("account in the tweaked domain: %v", err)
	}
	c.Restart("be1")
	if got := strings.Join(seen, ","); got != "fe1,be1,be1" {
		t.Fatalf("after Restart, Node called for %s, want fe1,be1,be1", got)
	}
}

func TestClusterAddBackendTakesPartitionsAndStopLeaves(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Backends: 1})
	c.AddBackend("be2") // returns settled
	own := owned(t, c, "fe1")
	if len(own["be2"]) == 0 || len(own["be1"]) == 0 || len(own) != 2 {
		t.Fatalf("after AddBackend partitions are owned %v, want both backends to hold some", own)
	}

	c.Stop("be2")
	wait.For(t, 20*time.Second, func() bool { return memberState(c, "fe1", "be2") == "left" },
		"fe1 sees be2 as %q, want left", wait.Lazy(func() string { return memberState(c, "fe1", "be2") }))
	c.WaitSettled(t)
	if own := owned(t, c, "fe1"); len(own["be1"]) != 8 {
		t.Fatalf("after be2 left partitions are owned %v, want all 8 on be1", own)
	}
	if got := strings.Join(c.Names(), ","); got != "fe1,be1" {
		t.Fatalf("Names() = %s after Stop, want fe1,be1", got)
	}
	f := failtb.New(t)
	c.t = f // so that the failure of Node is recorded, not fatal here
	msgs, _ := f.Run(func() { c.Node("be2") })
	c.t = t
	if len(msgs) != 1 || !strings.Contains(msgs[0], "be2 is not running") {
		t.Fatalf("Node of a stopped node reported %q, want one failure saying it is not running", msgs)
	}
}

func TestClusterKillIsDetectedAndRestartRejoins(t *testing.T) {
	c := StartCluster(t, ClusterOptions{})
	before := c.Node("be1")
	c.Kill("be1")
	wait.For(t, 20*time.Second, func() bool { return memberState(c, "fe1", "be1") == "dead" },
		"fe1 sees be1 as %q, want dead (a kill does not leave)", wait.Lazy(func() string { return memberState(c, "fe1", "be1") }))
	c.WaitSettled(t)
	if own := owned(t, c, "fe1"); len(own["be2"]) != 8 {
		t.Fatalf("after be1 died partitions are owned %v, want all 8 on be2", own)
	}

	c.Restart("be1") // returns settled
	after := c.Node("be1")
	if after == before {
		t.Fatal("Restart returned the old node")
	}
	if memberState(c, "fe1", "be1") != "alive" || memberState(c, "be2", "be1") != "alive" {
		t.Fatal("restarted be1 not seen alive")
	}
	if own := owned(t, c, "fe1"); len(own["be1"]) == 0 {
		t.Fatalf("restarted be1 owns nothing: %v", own)
	}
}

func TestClusterRestartKeepsTheDataDirectoryAndTheIsolation(t *testing.T) {
	ctx := context.Background()
	c := StartCluster(t, ClusterOptions{Backends: 1})
	const bob = "bob@example.test"
	if _, err := c.Admin("fe1").CreateAccount(ctx, admin.CreateAccount{Address: bob, Password: "secret-words-2"}); err != nil {
		t.Fatal(err)
	}
	send(t, c.Node("fe1").SMTPAddr(), bob, "one") // fe1 learns bob
	waitMailbox(t, c, bob, "one")

	c.Isolate("fe1")
	wait.For(t, 20*time.Second, func() bool { return memberState(c, "fe1", "be1") == "dead" }, "fe1 does not see be1 dead")
	send(t, c.Node("fe1").SMTPAddr(), bob, "two") // waits in fe1's queue
	if why := c.unsettled(nil); why == "" {
		t.Fatal("an isolated cluster counts as settled")
	}

	// The restarted frontend has the same queue (the same data directory)
	// and is still cut off: Restart returns without waiting to settle.
	c.Restart("fe1")
	q, err := c.Admin("fe1").Queue(ctx)
	if err != nil || len(q) != 1 {
		t.Fatalf("restarted fe1's queue holds %d messages (err %v), want the one queued before", len(q), err)
	}
	// Absence, so it takes its time: fe1 keeps trying its seed (be1) every
	// few hundred milliseconds, and must not get through.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if st := memberState(c, "fe1", "be1"); st == "alive" {
			t.Fatal("the restarted fe1 reached be1 although it is isolated")
		}
		if st := memberState(c, "be1", "fe1"); st == "alive" {
			t.Fatal("be1 sees the restarted, isolated fe1 alive")
		}
		<-time.After(20 * time.Millisecond) // polling interval
	}

	c.Heal()
	c.WaitSettled(t)
	waitMailbox(t, c, bob, "one", "two")
}

func TestClusterPartitionCutsOneLinkUntilHeal(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Backends: 1})
	c.Partition("fe1", "be1")
	for _, pair := range [][2]string{{"fe1", "be1"}, {"be1", "fe1"}} {
		wait.For(t, 20*time.Second, func() bool { return memberState(c, pair[0], pair[1]) == "dead" },
			"%s does not see %s dead across the cut", pair[0], pair[1])
	}
	c.Heal()
	c.WaitSettled(t)
	if !slices.Equal(c.Names(), []string{"fe1", "be1"}) {
		t.Fatalf("Names() = %v", c.Names())
	}
}

// TestIsolatedBackendClosesItsPartitions: a backend cut off from every
// other member sees a minority of the cluster alive and closes every
// partition it held, without taking any other; the rest of the cluster
// (the majority) gives them to the other backend, which opens them once
// the cut-off one has let go (the lock on the shared store). Healed, both
// serve again and mail reaches both.
func TestIsolatedBackendClosesItsPartitions(t *testing.T) {
	ctx := context.Background()
	c := StartCluster(t, ClusterOptions{})
	if own := owned(t, c, "fe1"); len(own["be1"]) == 0 || len(own["be2"]) == 0 {
		t.Fatalf("partitions %v, want some on each backend", own)
	}
	c.Isolate("be1")
	wait.For(t, 20*time.Second, func() bool {
		ps, err := c.Admin("be1").Partitions(ctx)
		return err == nil && len(ps) == 0
	}, "the cut-off be1 still runs partitions")
	wait.For(t, 20*time.Second, func() bool {
		ps, err := c.Admin("be2").Partitions(ctx)
		if err != nil || len(ps) != 8 {
			return false
		}
		for _, p := range ps {
			if !p.Open {
				return false
			}
		}
		return true
	}, "be2 does not hold all 8 partitions open while be1 is cut off")
	c.Heal()
	c.WaitSettled(t)
	if own := owned(t, c, "fe1"); len(own["be1"]) == 0 || len(own["be2"]) == 0 {
		t.Fatalf("after the heal partitions are %v, want some on each backend", own)
	}
}
