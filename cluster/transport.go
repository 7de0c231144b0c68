package cluster

import (
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/homing-mail/homing/mail"
)

// ErrLinkCut is what a Switch-wrapped transport returns for a stream dialled
// across a cut link.
var ErrLinkCut = mail.TemporaryError("cluster: switch: link cut")

// Switch is a test helper (package testkit uses it): an in-process network
// switch for the gossip transports of several nodes, to partition and heal
// gossip in one process. Wrap each node's transport with Wrap (through
// Config.WrapTransport); then Cut, Isolate and Heal change which nodes
// reach which.
//
// A cut drops the packets and refuses the streams (ErrLinkCut) that a
// wrapped node sends to a node it is cut from. Both ends of every link are
// wrapped by the same Switch, so a cut holds in both directions. Streams
// already open when a link is cut are not broken (memberlist's are short).
//
// All methods are safe for concurrent use.
type Switch struct {
	mu       sync.Mutex
	names    map[string]string // gossip host:port -> node name
	cut      map[[2]string]bool
	isolated map[string]bool
}

// NewSwitch returns a switch with every link up.
func NewSwitch() *Switch {
	return &Switch{names: map[string]string{}, cut: map[[2]string]bool{}, isolated: map[string]bool{}}
}

// Wrap returns a Config.WrapTransport for the node called name.
func (s *Switch) Wrap(name string) func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	return func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		return &switchedTransport{NodeAwareTransport: inner, sw: s, name: name}
	}
}

// Cut cuts the link between nodes a and b, both directions.
func (s *Switch) Cut(a, b string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut[linkKey(a, b)] = true
}

// Isolate cuts every link of node name, including links to nodes wrapped
// later.
func (s *Switch) Isolate(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.isolated[name] = true
}

// Heal brings every link up again.
func (s *Switch) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.cut)
	clear(s.isolated)
}

// linkKey names the link between a and b independently of direction.
func linkKey(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// register records that node name gossips at addr.
func (s *Switch) register(addr, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[addr] = name
}

// blocked reports whether node from may not reach the node at to (its
// name, or else its address is looked up). Unknown destinations are reached.
func (s *Switch) blocked(from string, to memberlist.Address) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := to.Name
	if n, ok := s.names[to.Addr]; ok {
		name = n
	}
	if name == "" || name == from {
		return false
	}
	return s.isolated[from] || s.isolated[name] || s.cut[linkKey(from, name)]
}

// switchedTransport is one node's transport behind a Switch.
type switchedTransport struct {
	memberlist.NodeAwareTransport
	sw   *Switch
	name string
}

// FinalAdvertiseAddr registers the node's address with the switch.
func (t *switchedTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	addrIP, addrPort, err := t.NodeAwareTransport.FinalAdvertiseAddr(ip, port)
	if err == nil {
		t.sw.register(net.JoinHostPort(addrIP.String(), strconv.Itoa(addrPort)), t.name)
	}
	return addrIP, addrPort, err
}

// WriteTo drops packets across a cut link, as a lossy network would.
func (t *switchedTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress drops packets across a cut link.
func (t *switchedTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if t.sw.blocked(t.name, addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, addr)
}

// DialTimeout refuses streams across a cut link.
func (t *switchedTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout refuses streams across a cut link.
func (t *switchedTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.sw.blocked(t.name, addr) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ErrLinkCut}
	}
	return t.NodeAwareTransport.DialAddressTimeout(addr, timeout)
}
