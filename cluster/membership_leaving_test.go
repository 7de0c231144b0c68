package cluster

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// mutedTransport drops every packet (UDP: gossip, probes, acks) the node
// sends once muted is set, and keeps its streams (TCP): the network a
// leaving node's gossip is lost on.
type mutedTransport struct {
	memberlist.NodeAwareTransport
	muted *atomic.Bool
}

func (t mutedTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t mutedTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if t.muted.Load() {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, addr)
}

// TestLeaveIsSeenAsLeftWhenItsGossipIsLost: a member that none of the
// leave's gossip reaches declares the leaver dead by failure detection;
// the leaving notice it got over TCP first makes that verdict "left".
func TestLeaveIsSeenAsLeftWhenItsGossipIsLost(t *testing.T) {
	var muted atomic.Bool
	a := startGossip(t, "a", nil)
	b := startGossip(t, "b", func(c *Config) {
		c.Join = []string{a.GossipAddr()}
		c.WrapTransport = func(tr memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
			return mutedTransport{tr, &muted}
		}
	})
	waitStates(t, 5*time.Second, []*gossipNode{a, b}, map[string]State{"a": StateAlive, "b": StateAlive})

	muted.Store(true)
	if err := b.Leave(2 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	waitStates(t, 5*time.Second, []*gossipNode{a}, map[string]State{"b": StateLeft})
	if n := a.log.Count("member is leaving"); n != 1 {
		t.Errorf("a logged the leaving notice %d times, want 1", n)
	}
}

// TestLeavingNoticeNamesItsProcess: a notice counts only for the process
// that sent it; one naming an earlier process of the same name, an
// unknown member or this node itself changes nothing.
func TestLeavingNoticeNamesItsProcess(t *testing.T) {
	a := startGossip(t, "a", nil)
	b := startGossip(t, "b", joining(a.GossipAddr()))
	waitStates(t, 5*time.Second, []*gossipNode{a, b}, map[string]State{"a": StateAlive, "b": StateAlive})
	d := delegate{a.Membership}
	bStarted := strconv.FormatInt(b.Meta().Started, 10)
	aStarted := strconv.FormatInt(a.Meta().Started, 10)

	leaving := func(name string) bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		e, ok := a.members[name]
		return ok && e.leaving
	}
	for _, in := range []string{
		`{"leaving":{"n":"b","t":1}}`,                // an earlier process named b
		`{"leaving":{"n":"c","t":` + bStarted + `}}`, // no such member
		`{"leaving":{"n":"a","t":` + aStarted + `}}`, // a itself
		`{"leaving":{}}`, `not json`, ``,
	} {
		d.NotifyMsg([]byte(in))
		if leaving("a") || leaving("b") || leaving("c") {
			t.Fatalf("%q marked a member leaving", in)
		}
	}
	d.NotifyMsg([]byte(`{"leaving":{"n":"b","t":` + bStarted + `}}`))
	if !leaving("b") {
		t.Fatal("b's own notice did not mark it leaving")
	}
	// Its later alive messages (same process, no marker) keep the mark.
	if a.setAlive("b", b.GossipAddr(), b.Meta(), false); !leaving("b") {
		t.Fatal("an alive message of the same process cleared the leaving mark")
	}
	// A new process under the name b does not inherit it.
	next := b.Meta()
	next.Started++
	if a.setAlive("b", b.GossipAddr(), next, false); leaving("b") {
		t.Fatal("a new process named b inherited the leaving mark")
	}
}
