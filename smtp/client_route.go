package smtp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/homing-mail/homing/mail"
)

// host is one server to try: a name (for TLS and reports), the port, and
// for routes to an IP and for implicit MX the addresses already known.
type host struct {
	name  string
	port  int
	addrs []string // "ip:port"; nil: resolve name
	// route is the key of Routes the host came from ("" for MX hosts
	// and smarthosts); mx says it is an MX host of the domain (or the
	// domain itself, implicit MX): MTA-STS applies only then.
	route string
	mx    bool
}

// route returns the hosts to try for domain, best first, or the result
// every recipient gets when there are none.
func (c *Client) route(ctx context.Context, domain string) ([]host, *mail.Result) {
	if c.cfg.Smarthosts != nil {
		var hosts []host
		for _, hp := range c.cfg.Smarthosts() {
			if hs, fail := routeHost(hp, ""); fail == nil {
				hosts = append(hosts, hs...)
			}
		}
		if len(hosts) == 0 {
			return nil, ptr(mail.Temp(mail.StatusUnableToRoute, "no forwarding host available for "+domain))
		}
		return hosts, nil
	}
	if hp, ok := c.cfg.Routes[domain]; ok {
		return routeHost(hp, domain)
	}
	if hp, ok := c.cfg.Routes["*"]; ok {
		return routeHost(hp, "*")
	}
	if strings.HasPrefix(domain, "[") {
		// An address literal names the host itself (RFC 5321 §4.1.3).
		ip, ok := literalIP(domain)
		if !ok {
			return nil, ptr(mail.Perm(mail.StatusBadDestinationHost, "bad address literal "+domain))
		}
		return []host{{name: ip.String(), port: c.cfg.Port,
			addrs: []string{net.JoinHostPort(ip.String(), strconv.Itoa(c.cfg.Port))}}}, nil
	}

	mxs, err := c.cfg.Resolver.LookupMX(ctx, domain)
	if err != nil && !isNotFound(err) {
		return nil, ptr(mail.Temp(mail.StatusDirectoryFailure, "DNS lookup of the MX records of "+domain+" failed: "+err.Error()))
	}
	if len(mxs) == 1 && mxs[0] != nil && (mxs[0].Host == "." || mxs[0].Host == "") {
		// RFC 7505 §3: the domain accepts no mail.
		return nil, ptr(mail.Result{Code: 556, Status: mail.StatusNullMX, Text: domain + " does not accept mail (null MX, RFC 7505)"})
	}
	mxs = slices.DeleteFunc(slices.Clone(mxs), func(mx *net.MX) bool {
		return mx == nil || strings.TrimSuffix(mx.Host, ".") == ""
	})
	// net.Resolver sorts by preference already; a stub may not.
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	var hosts []host
	for _, mx := range mxs {
		hosts = append(hosts, host{name: strings.TrimSuffix(mx.Host, "."), port: c.cfg.Port, mx: true})
	}
	if len(hosts) > 0 {
		return hosts, nil
	}

	// No MX: the domain is its own mail server (RFC 5321 §5.1).
	addrs, err := c.cfg.Resolver.LookupHost(ctx, domain)
	switch {
	case isNotFound(err) || (err == nil && len(addrs) == 0):
		return nil, ptr(mail.Perm(mail.StatusBadDestinationHost, "domain "+domain+" has no mail server"))
	case err != nil:
		return nil, ptr(mail.Temp(mail.StatusDirectoryFailure, "DNS lookup of "+domain+" failed: "+err.Error()))
	}
	return []host{{name: domain, port: c.cfg.Port, addrs: withPort(addrs, c.cfg.Port), mx: true}}, nil
}

// addresses returns the "ip:port" addresses of h, resolving its name when
// they are not known yet.
func (c *Client) addresses(ctx context.Context, h host) ([]string, *mail.Result) {
	if h.addrs != nil {
		return h.addrs, nil
	}
	ips, err := c.cfg.Resolver.LookupHost(ctx, h.name)
	switch {
	case isNotFound(err) || (err == nil && len(ips) == 0):
		return nil, ptr(mail.Temp(mail.StatusUnableToRoute, "mail server "+h.name+" has no address"))
	case err != nil:
		return nil, ptr(mail.Temp(mail.StatusDirectoryFailure, "DNS lookup of "+h.name+" failed: "+err.Error()))
	}
	return withPort(ips, h.port), nil
}

// routeHost turns a configured "host:port" into the host to try; route
// is the key of Routes it is the value of.
func routeHost(hp, route string) ([]host, *mail.Result) {
	name, portText, err := net.SplitHostPort(hp)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil || name == "" || port <= 0 || port > 65535 {
		return nil, ptr(mail.Temp(mail.StatusUnableToRoute, "bad route "+hp))
	}
	h := host{name: name, port: port, route: route}
	if ip, err := netip.ParseAddr(name); err == nil {
		h.addrs = []string{net.JoinHostPort(ip.String(), portText)}
	}
	return []host{h}, nil
}

// literalIP returns the IP of an address literal domain as ParseAddress
// writes it: "[192.0.2.1]" or "[ipv6:2001:db8::1]".
func literalIP(domain string) (netip.Addr, bool) {
	inner := strings.TrimSuffix(strings.TrimPrefix(domain, "["), "]")
	if len(inner) > 5 && strings.EqualFold(inner[:5], "ipv6:") {
		inner = inner[5:]
	}
	ip, err := netip.ParseAddr(inner)
	return ip, err == nil && ip.Zone() == ""
}

func withPort(ips []string, port int) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip, strconv.Itoa(port)))
	}
	return out
}

// isNotFound reports whether err says the name or the records do not
// exist (NXDOMAIN or no data).
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

func ptr[T any](v T) *T { return &v }
