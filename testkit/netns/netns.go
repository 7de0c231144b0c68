// Package netns builds a small network of hosts for tests: each host is a
// Linux network namespace with one address in 198.18.0.0/24 (RFC 2544's
// benchmarking range), and all are joined by a bridge in a namespace of
// their own, so that a test can cut a host off (its link down) and heal it.
// Nothing is routed: no namespace has a default route, and the machine's
// own namespace is not touched. Everything is removed when the test ends.
//
// It needs root and the ip command (iproute2); New skips the test with the
// reason where a namespace cannot be made.
package netns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Net is a bridge and the hosts on it.
type Net struct {
	t      testing.TB
	prefix string
	bridge string // the namespace holding the bridge

	mu    sync.Mutex
	hosts map[string]*Host
	next  int
	split bool // the second bridge exists
}

// Host is one namespace on the Net.
type Host struct {
	Name string
	NS   string // the namespace's name
	Addr string // its address (no mask)
	link string // its link's end in the bridge's namespace
}

// New makes an empty network, or skips t where namespaces cannot be made.
// Names are prefixed with prefix and the test process's pid, so parallel
// runs do not collide.
func New(t testing.TB, prefix string) *Net {
	t.Helper()
	n := &Net{t: t, prefix: fmt.Sprintf("%s%d", prefix, os.Getpid()%100000), hosts: map[string]*Host{}, next: 1}
	n.bridge = n.prefix + "-br"
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespaces: the ip command (iproute2) is not installed")
	}
	if out, err := exec.Command("ip", "netns", "add", n.bridge).CombinedOutput(); err != nil {
		t.Skipf("network namespaces cannot be made here (root and CAP_SYS_ADMIN needed): ip netns add: %v: %s", err, out)
	}
	t.Cleanup(n.remove)
	n.ip("-n", n.bridge, "link", "add", "br0", "type", "bridge")
	n.ip("-n", n.bridge, "link", "set", "br0", "up")
	return n
}

// Host adds a host called name with the next address.
func (n *Net) Host(name string) *Host {
	n.t.Helper()
	n.mu.Lock()
	id := n.next
	n.next++
	n.mu.Unlock()
	h := &Host{Name: name, NS: fmt.Sprintf("%s-%s", n.prefix, name), Addr: fmt.Sprintf("198.18.0.%d", id), link: fmt.Sprintf("v%d", id)}
	n.ip("netns", "add", h.NS)
	n.mu.Lock()
	n.hosts[name] = h
	n.mu.Unlock()
	n.ip("-n", h.NS, "link", "set", "lo", "up")
	n.ip("-n", h.NS, "link", "add", "eth0", "type", "veth", "peer", "name", h.link, "netns", n.bridge)
	n.ip("-n", h.NS, "addr", "add", h.Addr+"/24", "dev", "eth0")
	n.ip("-n", h.NS, "link", "set", "eth0", "up")
	n.ip("-n", n.bridge, "link", "set", h.link, "master", "br0")
	n.ip("-n", n.bridge, "link", "set", h.link, "up")
	return h
}

// Cut takes host name's link down: it reaches nobody and nobody reaches it.
func (n *Net) Cut(name string) {
	n.t.Helper()
	n.ip("-n", n.bridge, "link", "set", n.host(name).link, "down")
}

// Heal brings host name's link up again.
func (n *Net) Heal(name string) {
	n.t.Helper()
	n.ip("-n", n.bridge, "link", "set", n.host(name).link, "up")
}

// Command returns the command line that runs bin with args in host
// name's namespace.
func (n *Net) Command(name, bin string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", n.host(name).NS, bin}, args...)
}

func (n *Net) host(name string) *Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hosts[name]
	if h == nil {
		n.t.Fatalf("netns: no host %s", name)
	}
	return h
}

func (n *Net) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// remove deletes every namespace (their links go with them).
func (n *Net) remove() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, h := range n.hosts {
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
	}
	_ = exec.Command("ip", "netns", "del", n.bridge).Run()
}

// Prefix is the command line prefix that runs a program in host name's
// namespace.
func (n *Net) Prefix(name string) []string {
	return []string{"ip", "netns", "exec", n.host(name).NS}
}

// Addr is host name's address.
func (n *Net) Addr(name string) string { return n.host(name).Addr }

// Env describes the network for a process that runs inside it (FromEnv).
func (n *Net) Env() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	parts := []string{n.prefix}
	for _, h := range n.hosts {
		parts = append(parts, h.Name+"="+h.NS+"="+h.Addr+"="+h.link)
	}
	return strings.Join(parts, ",")
}

// FromEnv is the network Env described, made by another process (which
// removes it): for a test run inside one of its hosts.
func FromEnv(t testing.TB, env string) *Net {
	parts := strings.Split(env, ",")
	n := &Net{t: t, prefix: parts[0], bridge: parts[0] + "-br", hosts: map[string]*Host{}}
	for _, p := range parts[1:] {
		f := strings.Split(p, "=")
		if len(f) != 4 {
			t.Fatalf("netns: bad host %q", p)
		}
		n.hosts[f[0]] = &Host{Name: f[0], NS: f[1], Addr: f[2], link: f[3]}
	}
	return n
}

// NS is host name's namespace.
func (n *Net) NS(name string) string { return n.host(name).NS }

// Split cuts the hosts named from all the others (they still reach each
// other): their links move to a second bridge. Rejoin undoes it.
func (n *Net) Split(names ...string) {
	n.t.Helper()
	n.mu.Lock()
	made := n.split
	n.split = true
	n.mu.Unlock()
	if !made {
		n.ip("-n", n.bridge, "link", "add", "br1", "type", "bridge")
		n.ip("-n", n.bridge, "link", "set", "br1", "up")
	}
	for _, name := range names {
		n.ip("-n", n.bridge, "link", "set", n.host(name).link, "master", "br1")
	}
}

// Rejoin puts the hosts named back on the main bridge (after Split).
func (n *Net) Rejoin(names ...string) {
	n.t.Helper()
	for _, name := range names {
		n.ip("-n", n.bridge, "link", "set", n.host(name).link, "master", "br0")
	}
}
