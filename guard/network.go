package guard

import "net/netip"

// Networks says how client addresses are grouped into the networks that
// limits are kept for: IPv4 addresses by their first IPv4 bits, IPv6
// addresses by their first IPv6 bits. An attacker usually controls a whole
// network (an IPv6 end site gets a /64 at least), so per-address limits are
// too easy to spread out.
type Networks struct {
	IPv4 int // prefix length for IPv4 addresses, 1..32; 0 means 24
	IPv6 int // prefix length for IPv6 addresses, 1..128; 0 means 64
}

// DefaultIPv4Prefix and DefaultIPv6Prefix are the network sizes used when
// none is configured.
const (
	DefaultIPv4Prefix = 24
	DefaultIPv6Prefix = 64
)

// Of returns the network of a: its prefix of the configured length. An
// IPv4-mapped IPv6 address counts as IPv4. The invalid address (a peer that
// is not TCP) maps to the zero Prefix, one network of its own.
func (n Networks) Of(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := n.IPv6
	if a.Is4() {
		bits = n.IPv4
		if bits <= 0 || bits > 32 {
			bits = DefaultIPv4Prefix
		}
	} else if bits <= 0 || bits > 128 {
		bits = DefaultIPv6Prefix
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
