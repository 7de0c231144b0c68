package testkit

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
)

// viewer is what WaitSettled asks each node: its view of the cluster and
// the partitions it runs. An in-process node answers through its admin API
// in process (node.API), a process node over HTTP (admin.Client).
type viewer interface {
	Cluster(ctx context.Context) (admin.Cluster, error)
	Partitions(ctx context.Context) ([]admin.PartitionStatus, error)
}

// WaitSettled waits until the cluster has converged, and fails t if it does
// not within 30 s: every running node sees every running node alive and the
// same owner for each partition; every owner is a running backend, and
// each running backend runs exactly the partitions it owns, all open. It
// cannot succeed while a Partition or Isolate is in effect.
//
// With the in-process runner it looks again whenever a node reports a
// change (node.Changes: membership, a partition opened or closed), so it
// returns as soon as the cluster has settled; process nodes are asked over
// their admin API, polled with a deadline.
func (c *Cluster) WaitSettled(t testing.TB) {
	t.Helper()
	c.waitFor(t, "cluster not settled", func() string { return c.unsettled(nil) })
}

// WaitOwners waits until every running node sees each partition owned by
// one of owners (and each of them owning some), and each owner runs
// exactly what it owns, all open; it fails t if that does not happen
// within 30 s. Unlike WaitSettled it allows running backends that own
// nothing (a static backend whose partitions another holds).
func (c *Cluster) WaitOwners(t testing.TB, owners ...string) {
	t.Helper()
	c.waitFor(t, fmt.Sprintf("partitions not owned and open by %v", owners), func() string { return c.unsettled(owners) })
}

// waitFor waits until why returns "", looking again after every change a
// node reports, and every pollInterval at the latest.
func (c *Cluster) waitFor(t testing.TB, what string, why func() string) {
	t.Helper()
	changed, cancel := c.subscribe()
	defer cancel()
	start := time.Now()
	deadline := time.NewTimer(settleTimeout)
	defer deadline.Stop()
	var reason, last string
	for {
		if reason = why(); reason == "" {
			break
		}
		last = reason
		poll := time.NewTimer(pollInterval)
		select {
		case <-changed:
		case <-poll.C:
		case <-deadline.C:
			poll.Stop()
			t.Fatalf("%s within %v: %s", what, settleTimeout, reason)
		}
		poll.Stop()
	}
	if last == "" {
		t.Logf("cluster settled")
	} else {
		t.Logf("cluster settled in %v (last waited for: %s)", time.Since(start).Round(time.Millisecond), last)
	}
}

// pollInterval is how often waitFor looks again without a change
// notice: the only way to see process nodes, and a safety net for
// in-process ones.
const pollInterval = 100 * time.Millisecond

// subscribe returns a channel that receives a value when any running
// in-process node reports a change (nothing for process nodes).
func (c *Cluster) subscribe() (<-chan struct{}, func()) {
	c.mu.Lock()
	var cases []reflect.SelectCase
	var cancels []func()
	for _, name := range c.order {
		if n := c.members[name].node; n != nil {
			ch, cancel := n.Changes()
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
			cancels = append(cancels, cancel)
		}
	}
	c.mu.Unlock()
	out := make(chan struct{}, 1)
	stop := make(chan struct{})
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(stop)})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			i, _, _ := reflect.Select(cases)
			if i == len(cases)-1 {
				return
			}
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	return out, func() {
		close(stop)
		<-done
		for _, cancel := range cancels {
			cancel()
		}
	}
}

// viewers returns the running nodes by name, their viewers, and which are
// backends.
func (c *Cluster) viewers() (names []string, views map[string]viewer, backend map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	views, backend = map[string]viewer{}, map[string]bool{}
	for _, name := range c.order {
		m := c.members[name]
		if !m.up {
			continue
		}
		names = append(names, name)
		backend[name] = m.backend
		if m.node != nil {
			views[name] = m.node.API()
		} else {
			cl := admin.NewClient(m.proc.Admin, c.adminToken())
			cl.HTTP = c.http
			views[name] = cl
		}
	}
	return names, views, backend
}

// unsettled returns why the cluster has not settled, or "" if it has.
// owners, when set, are the nodes that must own every partition (each some
// of them); otherwise every running backend must run exactly what it owns.
func (c *Cluster) unsettled(owners []string) string {
	names, views, backend := c.viewers()
	if !slices.ContainsFunc(names, func(n string) bool { return backend[n] }) {
		return "no backend runs"
	}
	// A node answers at once unless a partition actor is busy (stopping,
	// say): then ask again on the next look rather than wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	var seen0 []string // owners by partition, as the first running node sees them
	for _, name := range names {
		view, err := views[name].Cluster(ctx)
		if err != nil {
			return fmt.Sprintf("%s: cluster view: %v", name, err)
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
			if owners != nil && !slices.Contains(owners, p.Owner) {
				return fmt.Sprintf("%s sees partition %d owned by %q, not one of %v", name, p.ID, p.Owner, owners)
			}
			seen[p.ID] = p.Owner
		}
		if seen0 == nil {
			seen0 = seen
		} else if !slices.Equal(seen0, seen) {
			return fmt.Sprintf("%s sees owners %v, %s sees %v", names[0], seen0, name, seen)
		}
	}
	check := owners
	if check == nil {
		for _, name := range names {
			if backend[name] {
				check = append(check, name)
			}
		}
	}
	for _, name := range check {
		v, ok := views[name]
		if !ok {
			return fmt.Sprintf("%s does not run", name)
		}
		ps, err := v.Partitions(ctx)
		if err != nil {
			return fmt.Sprintf("%s: partitions: %v", name, err)
		}
		var want, got []int
		for p, o := range seen0 {
			if o == name {
				want = append(want, p)
			}
		}
		if owners != nil && len(want) == 0 {
			return fmt.Sprintf("%s owns no partition", name)
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
