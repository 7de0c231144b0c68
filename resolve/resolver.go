package resolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Config configures a Resolver. Zero values take the defaults.
type Config struct {
	// Server is the DNS server, "host:port" (--dns). "" uses the
	// nameservers of ResolvConf.
	Server string
	// ResolvConf is the file naming the system's nameservers; default
	// /etc/resolv.conf.
	ResolvConf string
	// Timeout bounds one exchange with one server (default 5 s); a
	// lookup tries each server once, over TCP again when the UDP answer
	// was truncated.
	Timeout time.Duration
	// CacheSize is the number of answers kept (default 10,000); negative
	// turns the cache off.
	CacheSize int
	// MaxTTL caps how long an answer is kept (default 1 h), NegativeTTL
	// how long a "no such name or record" is kept when the server's SOA
	// gives no shorter time (default 5 min, RFC 2308 §5).
	MaxTTL, NegativeTTL time.Duration
	// Now is the clock of the cache; default time.Now.
	Now func() time.Time
}

// Resolver looks names up with a cache honouring TTLs. Safe for
// concurrent use.
type Resolver struct {
	servers []string
	timeout time.Duration
	maxTTL  time.Duration
	negTTL  time.Duration
	cache   *cache
	now     func() time.Time
}

// New returns a resolver for cfg. Without Server it asks the nameservers
// of ResolvConf, or, when that cannot be read or names none, a resolver
// on this host (127.0.0.1:53 and [::1]:53, as Go's own resolver does).
func New(cfg Config) (*Resolver, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = time.Hour
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Resolver{timeout: cfg.Timeout, maxTTL: cfg.MaxTTL, negTTL: cfg.NegativeTTL, now: cfg.Now,
		cache: newCache(cfg.CacheSize, cfg.Now)}
	if cfg.Server != "" {
		if _, _, err := net.SplitHostPort(cfg.Server); err != nil {
			return nil, fmt.Errorf("--dns %s: want HOST:PORT", cfg.Server)
		}
		r.servers = []string{cfg.Server}
		return r, nil
	}
	file := cfg.ResolvConf
	if file == "" {
		file = "/etc/resolv.conf"
	}
	cc, err := dns.ClientConfigFromFile(file)
	if err == nil {
		for _, s := range cc.Servers {
			r.servers = append(r.servers, net.JoinHostPort(s, cc.Port))
		}
	}
	if len(r.servers) == 0 {
		// As Go's own resolver does without a usable resolv.conf: a
		// resolver on this host.
		r.servers = []string{"127.0.0.1:53", "[::1]:53"}
	}
	return r, nil
}

// Servers are the servers asked, in order.
func (r *Resolver) Servers() []string { return append([]string(nil), r.servers...) }

// CacheLen is the number of answers in the cache (for tests and metrics).
func (r *Resolver) CacheLen() int { return r.cache.len() }

// lookup returns the records of type qtype for name, from the cache or
// the servers. A name that does not exist or has no such records is a
// *net.DNSError with IsNotFound; a server that fails or does not answer
// one with IsTemporary or IsTimeout.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) (answer, error) {
	fqdn := dns.Fqdn(strings.ToLower(name))
	if _, ok := dns.IsDomainName(fqdn); !ok || strings.Contains(fqdn, "..") {
		return answer{}, &net.DNSError{Err: "invalid domain name", Name: name}
	}
	key := cacheKey{fqdn, qtype}
	if a, ok := r.cache.get(key); ok {
		return a, notFound(a, name)
	}
	q := new(dns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.RecursionDesired = true
	// RFC 6840 §5.7: AD in a query asks for the AD bit in the answer.
	q.AuthenticatedData = true
	q.SetEdns0(1232, true)
	var last error
	for _, srv := range r.servers {
		in, err := r.exchange(ctx, q, srv)
		if err != nil {
			last = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		a, cacheable, err := r.interpret(in, qtype, name, srv)
		if err != nil {
			last = err
			continue
		}
		if cacheable {
			r.cache.put(key, a)
		}
		return a, notFound(a, name)
	}
	if last == nil {
		last = &net.DNSError{Err: "no server to ask", Name: name, IsTemporary: true}
	}
	return answer{}, last
}

func notFound(a answer, name string) error {
	if a.notFound {
		return &net.DNSError{Err: "no such host or record", Name: name, IsNotFound: true}
	}
	return nil
}

// exchange asks srv, over UDP and again over TCP when the answer was
// truncated (RFC 7766 §5).
func (r *Resolver) exchange(ctx context.Context, q *dns.Msg, srv string) (*dns.Msg, error) {
	name := strings.TrimSuffix(q.Question[0].Name, ".")
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: r.timeout}
		ectx, cancel := context.WithTimeout(ctx, r.timeout)
		in, _, err := c.ExchangeContext(ectx, q, srv)
		cancel()
		if err != nil {
			var ne net.Error
			timeout := errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
			return nil, &net.DNSError{Err: err.Error(), Name: name, Server: srv, IsTimeout: timeout, IsTemporary: true}
		}
		if in.Truncated && network == "udp" {
			continue
		}
		return in, nil
	}
	return nil, &net.DNSError{Err: "truncated answer", Name: name, Server: srv, IsTemporary: true}
}

// interpret turns a reply into an answer, and says whether it may be
// cached.
func (r *Resolver) interpret(in *dns.Msg, qtype uint16, name, srv string) (answer, bool, error) {
	now := r.now()
	switch in.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return answer{notFound: true, ad: in.AuthenticatedData, expires: now.Add(r.negativeTTL(in))}, true, nil
	default:
		// SERVFAIL (a validating resolver's answer to bogus data too),
		// REFUSED, FORMERR...: this server cannot answer now.
		return answer{}, false, &net.DNSError{Err: "server answered " + dns.RcodeToString[in.Rcode], Name: name, Server: srv, IsTemporary: true}
	}
	a := answer{ad: in.AuthenticatedData}
	ttl := r.maxTTL
	for _, rr := range in.Answer {
		if rr.Header().Rrtype != qtype {
			continue // the CNAMEs on the way, and anything else
		}
		a.rrs = append(a.rrs, rr)
		ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
	}
	if len(a.rrs) == 0 {
		a.notFound = true
		ttl = r.negativeTTL(in)
	}
	a.expires = now.Add(ttl)
	return a, ttl > 0, nil
}

// negativeTTL is how long a negative answer is kept: the SOA's minimum
// (or its TTL, whichever is less; RFC 2308 §5), at most NegativeTTL.
func (r *Resolver) negativeTTL(in *dns.Msg) time.Duration {
	for _, rr := range in.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(r.negTTL, time.Duration(min(soa.Minttl, soa.Hdr.Ttl))*time.Second)
		}
	}
	return min(r.negTTL, time.Minute)
}
