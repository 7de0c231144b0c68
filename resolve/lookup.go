package resolve

import (
	"context"
	"encoding/hex"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// LookupMX returns the MX records of name, sorted by preference (RFC
// 5321 §5.1). A null MX (RFC 7505) comes back as a record with Host ".".
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	a, err := r.lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := make([]*net.MX, 0, len(a.rrs))
	for _, rr := range a.rrs {
		mx := rr.(*dns.MX)
		out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	slices.SortStableFunc(out, func(x, y *net.MX) int { return int(x.Pref) - int(y.Pref) })
	return out, nil
}

// LookupIPAddr returns the IPv4 and IPv6 addresses of host (A and AAAA,
// asked one after the other). It is not found only when neither has an
// address; an error of one is returned when the other found none.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IPAddr{{IP: ip}}, nil
	}
	var out []net.IPAddr
	var notFoundErr, failed error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		a, err := r.lookup(ctx, host, t)
		switch {
		case isNotFound(err):
			notFoundErr = err
			continue
		case err != nil:
			failed = err
			continue
		}
		for _, rr := range a.rrs {
			switch rr := rr.(type) {
			case *dns.A:
				out = append(out, net.IPAddr{IP: rr.A})
			case *dns.AAAA:
				out = append(out, net.IPAddr{IP: rr.AAAA})
			}
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case failed != nil:
		return nil, failed
	}
	return nil, notFoundErr
}

// LookupHost returns the addresses of host as strings (net.Resolver's
// shape, for the relay client).
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	ips, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.IP.String()
	}
	return out, nil
}

// LookupTXT returns the TXT records of name, the strings of each record
// joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2), one entry per record.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	a, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(a.rrs))
	for _, rr := range a.rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}

// LookupAddr returns the names of an address (PTR, RFC 1035 §3.5).
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	rev, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "not an address", Name: addr}
	}
	a, err := r.lookup(ctx, rev, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(a.rrs))
	for _, rr := range a.rrs {
		out = append(out, rr.(*dns.PTR).Ptr)
	}
	return out, nil
}

// TLSA is one TLSA record (RFC 6698 §2.1).
type TLSA struct {
	Usage, Selector, MatchingType uint8
	Data                          []byte // the certificate association data
}

// LookupTLSA returns the TLSA records of _port._tcp.host and whether the
// server said they are authentic (the AD bit of a validating resolver,
// RFC 7672 §2.2: DANE uses them only then).
func (r *Resolver) LookupTLSA(ctx context.Context, port int, host string) (records []TLSA, secure bool, err error) {
	name := "_" + strconv.Itoa(port) + "._tcp." + strings.TrimSuffix(host, ".")
	a, err := r.lookup(ctx, name, dns.TypeTLSA)
	if err != nil {
		return nil, a.ad, err
	}
	for _, rr := range a.rrs {
		t := rr.(*dns.TLSA)
		data, err := hex.DecodeString(t.Certificate)
		if err != nil {
			continue
		}
		records = append(records, TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: data})
	}
	return records, a.ad, nil
}

func isNotFound(err error) bool {
	de, ok := err.(*net.DNSError)
	return ok && de.IsNotFound
}
