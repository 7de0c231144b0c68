package mtasts

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/idna"
)

// Resolver is what Source needs of the node's resolver.
type Resolver interface {
	TXTResolver
	HostResolver
}

// Config configures a Source. Zero values take the documented defaults.
type Config struct {
	Resolver Resolver
	// Roots verify policy hosts' certificates; nil: the system's.
	Roots *x509.CertPool
	// Port is the HTTPS port of policy hosts; 0 is 443 (tests only
	// change it).
	Port int
	// Timeout bounds one policy fetch; default 20 s.
	Timeout time.Duration
	// CacheFile keeps the policies fetched across restarts; "" keeps them
	// in memory only.
	CacheFile string
	// MaxEntries bounds the cache (default 10,000 domains).
	MaxEntries int
	// RetryFetch: after a fetch failed, the domain's policy is not
	// fetched again for the same record id for this long (default 5
	// min), so that every delivery attempt to a domain with a broken
	// policy host does not wait for it.
	RetryFetch time.Duration
	Logger     *slog.Logger
	// Registerer gets the fetch counter (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Source finds the policy that applies to a domain (RFC 8461 §5.1). It is
// safe for concurrent use; concurrent lookups of one domain share one
// fetch.
type Source struct {
	cfg     Config
	fetcher *Fetcher
	cache   *cache
	log     *slog.Logger
	fetches *prometheus.CounterVec

	mu       sync.Mutex
	inflight map[string]*flight
	failed   map[string]failure
}

type flight struct {
	done chan struct{}
	p    *Policy
	err  error
}

type failure struct {
	id    string
	until time.Time
	err   error
}

// New returns a Source with the cache read from cfg.CacheFile. A cache
// file that does not parse is logged and replaced; one that cannot be
// read is an error.
func New(cfg Config) (*Source, error) {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10000
	}
	if cfg.RetryFetch <= 0 {
		cfg.RetryFetch = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c, err := openCache(cfg.CacheFile, cfg.MaxEntries)
	if errors.Is(err, errCacheDamaged) {
		log.Warn(err.Error())
	} else if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, cache: c, log: log, inflight: map[string]*flight{}, failed: map[string]failure{},
		fetcher: &Fetcher{Resolver: cfg.Resolver, Roots: cfg.Roots, Port: cfg.Port, Timeout: cfg.Timeout}}
	s.fetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "homing_mta_sts_fetches_total",
		Help: "MTA-STS policy fetches over HTTPS (RFC 8461 §3.3) by result: ok, none (no policy host or 404), error (connection, TLS, HTTP status, redirect, size, type, timeout: temporary), malformed (the policy does not parse).",
	}, []string{"result"})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.fetches); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			s.fetches = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	for _, r := range []string{"ok", "none", "error", "malformed"} {
		s.fetches.WithLabelValues(r) // at zero from the start
	}
	return s, nil
}

// Lookup is the answer for one domain.
type Lookup struct {
	// Policy applies (nil: none; a policy in mode none is returned as
	// such: the domain withdrew its policy).
	Policy *Policy
	// ID is the record id the policy was fetched for.
	ID string
	// How says where the policy came from, or why there is none, in
	// words for logs: "cached", "fetched", "no record", "the record is
	// malformed: ...", "cached; the fetch failed: ...".
	How string
}

// Get returns the policy of domain (an ASCII or U-label name), following
// RFC 8461 §5.1: the cached policy while its id is the record's and its
// max_age has not passed; otherwise a fetch, whose policy replaces the
// cached one; a failed record lookup or fetch leaves the cached policy in
// force until it expires. Without a record (or with a malformed one) and
// nothing cached there is no policy, as there is when a fetch fails and
// nothing is cached. Get never blocks past ctx and the fetch timeout.
func (s *Source) Get(ctx context.Context, domain string) Lookup {
	d, err := idna.Lookup.ToASCII(strings.TrimSuffix(strings.ToLower(domain), "."))
	if err != nil || d == "" || strings.HasPrefix(domain, "[") {
		return Lookup{How: "not a domain name"}
	}
	now := s.cfg.Now()
	have := s.cache.get(d, now)
	rec, err := LookupRecord(ctx, s.cfg.Resolver, d)
	if err != nil {
		if have != nil {
			return Lookup{Policy: have.policy(), ID: have.ID, How: "cached (" + recordProblem(err) + ")"}
		}
		return Lookup{How: recordProblem(err)}
	}
	if have != nil && have.ID == rec.ID {
		return Lookup{Policy: have.policy(), ID: have.ID, How: "cached"}
	}
	p, err := s.fetch(ctx, d, rec.ID)
	if err != nil {
		if have != nil {
			return Lookup{Policy: have.policy(), ID: have.ID, How: fmt.Sprintf("cached (id %s; the policy of id %s could not be fetched: %v)", have.ID, rec.ID, err)}
		}
		return Lookup{How: fmt.Sprintf("the record (id %s) has no policy that can be fetched: %v", rec.ID, err)}
	}
	return Lookup{Policy: p, ID: rec.ID, How: "fetched"}
}

func recordProblem(err error) string {
	if errors.Is(err, ErrNoRecord) {
		return "no record"
	}
	return err.Error()
}

// fetch fetches the policy of domain for record id once for all callers
// that want it at the same time, and caches it; a failure is remembered
// for RetryFetch.
func (s *Source) fetch(ctx context.Context, domain, id string) (*Policy, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	if f, ok := s.failed[domain]; ok && f.id == id && now.Before(f.until) {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w (the last attempt; the next after %s)", f.err, f.until.Format(time.RFC3339))
	}
	if c := s.cache.get(domain, now); c != nil && c.ID == id {
		// Another caller's fetch finished since this one looked (it
		// caches before it leaves inflight).
		s.mu.Unlock()
		return c.policy(), nil
	}
	if fl, ok := s.inflight[domain]; ok {
		s.mu.Unlock()
		select {
		case <-fl.done:
			return fl.p, fl.err
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", ErrFetch, ctx.Err())
		}
	}
	fl := &flight{done: make(chan struct{})}
	s.inflight[domain] = fl
	s.mu.Unlock()

	// The fetch is not cut short by one caller's context: others wait
	// for it (it has its own timeout).
	fctx := context.WithoutCancel(ctx)
	p, err := s.fetcher.Fetch(fctx, domain)
	result := "ok"
	switch {
	case errors.Is(err, ErrNoPolicy):
		result = "none"
	case errors.Is(err, ErrPolicySyntax):
		result = "malformed"
	case err != nil:
		result = "error"
	}
	s.fetches.WithLabelValues(result).Inc()
	if err == nil {
		e := &cached{Domain: domain, ID: id, Mode: p.Mode, MX: p.MX, MaxAge: int64(p.MaxAge / time.Second), Fetched: s.cfg.Now()}
		if serr := s.cache.put(e, e.Fetched); serr != nil {
			s.log.Warn("MTA-STS: the policy cache could not be saved; the policy is kept in memory", "domain", domain, "err", serr)
		}
		s.log.Info("MTA-STS policy fetched", "domain", domain, "id", id, "mode", p.Mode, "mx", strings.Join(p.MX, " "), "maxAge", p.MaxAge)
	} else {
		s.log.Warn("MTA-STS: the policy could not be fetched", "domain", domain, "id", id, "url", s.fetcher.URL(domain), "err", err)
	}

	s.mu.Lock()
	delete(s.inflight, domain)
	if err != nil {
		if len(s.failed) >= s.cfg.MaxEntries {
			clear(s.failed)
		}
		s.failed[domain] = failure{id: id, until: s.cfg.Now().Add(s.cfg.RetryFetch), err: err}
	} else {
		delete(s.failed, domain)
	}
	s.mu.Unlock()
	fl.p, fl.err = p, err
	close(fl.done)
	return p, err
}

// Cached is the number of policies in the cache.
func (s *Source) Cached() int { return s.cache.len() }
