package cluster

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestSwitchIsolateAndHeal(t *testing.T) {
	sw := NewSwitch()
	wrap := func(seeds ...string) func(*Config) {
		return func(c *Config) { c.WrapTransport = sw.Wrap(c.Name); c.Join = seeds }
	}
	a := startGossip(t, "a", wrap())
	b := startGossip(t, "b", wrap(a.GossipAddr()))
	c := startGossip(t, "c", wrap(a.GossipAddr()))
	all := []*gossipNode{a, b, c}
	alive := map[string]State{"a": StateAlive, "b": StateAlive, "c": StateAlive}
	waitStates(t, 5*time.Second, all, alive)
	for _, n := range all {
		drain(n.SelfDeclaredDead())
	}

	cut := time.Now()
	sw.Isolate("c")
	waitStates(t, 5*time.Second, []*gossipNode{a, b}, map[string]State{"a": StateAlive, "b": StateAlive, "c": StateDead})
	waitStates(t, 5*time.Second, []*gossipNode{c}, map[string]State{"a": StateDead, "b": StateDead, "c": StateAlive})
	t.Logf("both sides declared the other dead %v after the cut", time.Since(cut))
	if signalled(c.SelfDeclaredDead()) {
		t.Fatalf("c learnt it was declared dead while cut off")
	}

	healed := time.Now()
	sw.Heal()
	waitStates(t, 10*time.Second, all, alive)
	t.Logf("all alive again %v after the heal", time.Since(healed))
	if !received(c.SelfDeclaredDead(), 5*time.Second) {
		t.Fatalf("c was declared dead by the others but was not told")
	}
}

func TestSwitchCutOneLink(t *testing.T) {
	sw := NewSwitch()
	ta := &recordingTransport{}
	tb := &recordingTransport{}
	a := sw.Wrap("a")(ta)
	b := sw.Wrap("b")(tb)
	c := sw.Wrap("c")(&recordingTransport{})
	// Registration happens when memberlist asks for the advertised address.
	for i, tr := range []memberlist.NodeAwareTransport{a, b, c} {
		ip, port, err := tr.FinalAdvertiseAddr("127.0.0.1", 7000+i)
		if err != nil || ip.String() != "127.0.0.1" || port != 7000+i {
			t.Fatalf("FinalAdvertiseAddr: %v %d %v", ip, port, err)
		}
	}

	send := func(tr memberlist.NodeAwareTransport, to string) (bool, bool) {
		before := len(tr.(*switchedTransport).NodeAwareTransport.(*recordingTransport).sent)
		if _, err := tr.WriteTo([]byte("x"), to); err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
		packet := len(tr.(*switchedTransport).NodeAwareTransport.(*recordingTransport).sent) > before
		_, err := tr.DialAddressTimeout(memberlist.Address{Addr: to}, time.Second)
		return packet, err == nil
	}
	check := func(tr memberlist.NodeAwareTransport, to string, want bool) {
		t.Helper()
		if p, s := send(tr, to); p != want || s != want {
			t.Fatalf("to %s: packet %v stream %v, want %v", to, p, s, want)
		}
	}

	sw.Cut("b", "a")
	check(a, "127.0.0.1:7001", false) // a -> b
	check(b, "127.0.0.1:7000", false) // b -> a
	check(a, "127.0.0.1:7002", true)  // a -> c
	check(c, "127.0.0.1:7001", true)  // c -> b
	check(a, "10.9.9.9:1", true)      // unknown addresses are reached
	if _, err := b.DialTimeout("127.0.0.1:7000", time.Second); !errors.Is(err, ErrLinkCut) {
		t.Fatalf("dial across a cut: %v, want ErrLinkCut", err)
	}
	// A named address is cut by its name.
	if _, err := a.WriteToAddress([]byte("x"), memberlist.Address{Addr: "127.0.0.9:9", Name: "b"}); err != nil ||
		len(ta.sent) != 2 {
		t.Fatalf("packet to b by name went out: %d sent, err %v", len(ta.sent), err)
	}

	sw.Isolate("c")
	check(a, "127.0.0.1:7002", false)
	check(c, "127.0.0.1:7001", false)
	sw.Heal()
	check(a, "127.0.0.1:7001", true)
	check(b, "127.0.0.1:7002", true)
}

// recordingTransport is a NodeAwareTransport that records packets and
// "dials" by returning one end of a pipe.
type recordingTransport struct {
	sent []string
}

func (r *recordingTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return net.ParseIP(ip), port, nil
}
func (r *recordingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return r.WriteToAddress(b, memberlist.Address{Addr: addr})
}
func (r *recordingTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	r.sent = append(r.sent, addr.Addr)
	return time.Now(), nil
}
func (r *recordingTransport) PacketCh() <-chan *memberlist.Packet { return nil }
func (r *recordingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return r.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}
func (r *recordingTransport) DialAddressTimeout(memberlist.Address, time.Duration) (net.Conn, error) {
	c1, c2 := net.Pipe()
	_ = c2.Close()
	return c1, c1.Close()
}
func (r *recordingTransport) StreamCh() <-chan net.Conn { return nil }
func (r *recordingTransport) Shutdown() error           { return nil }
