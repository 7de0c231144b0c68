package mtasts

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/resolve"
	"github.com/homing-mail/homing/testkit/dnstest"
	"github.com/homing-mail/homing/testkit/ststest"
	"github.com/homing-mail/homing/testkit/testca"
)

const enforce = "version: STSv1\nmode: enforce\nmx: mx.remote.test\nmax_age: 86400\n"

// env is a loopback world: a DNS server whose zone names the policy host
// mta-sts.remote.test at 127.0.0.1 and publishes the TXT record, and an
// HTTPS server with a certificate of the test CA for that name.
type env struct {
	dns  *dnstest.Server
	web  *ststest.Server
	ca   *testca.CA
	res  *resolve.Resolver
	port int
}

func newEnv(t *testing.T, names ...string) *env {
	t.Helper()
	return newEnvTLS(t, func(ca *testca.CA) *tls.Config {
		if len(names) == 0 {
			names = []string{"mta-sts.remote.test"}
		}
		return ca.ServerTLS(t, names...)
	})
}

// newEnvTLS is newEnv with the policy server's TLS made by serverTLS.
func newEnvTLS(t *testing.T, serverTLS func(ca *testca.CA) *tls.Config) *env {
	t.Helper()
	ca := testca.New(t, "test CA")
	web := ststest.Start(t, serverTLS(ca))
	dns := dnstest.Start(t, dnstest.Zone{
		"mta-sts.remote.test":  {"A 127.0.0.1"},
		"_mta-sts.remote.test": {`1 TXT "v=STSv1; id=one"`},
	})
	// No resolver cache: a change of the zone counts at once.
	res, err := resolve.New(resolve.Config{Server: dns.Addr(), Timeout: time.Second, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &env{dns: dns, web: web, ca: ca, res: res, port: web.Port}
}

func (e *env) fetcher() *Fetcher {
	return &Fetcher{Resolver: e.res, Roots: e.ca.Pool(), Port: e.port, Timeout: 2 * time.Second}
}

func (e *env) source(t *testing.T, cache string) *Source {
	t.Helper()
	s, err := New(Config{Resolver: e.res, Roots: e.ca.Pool(), Port: e.port, Timeout: 2 * time.Second, CacheFile: cache})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestFetch: the policy host's answer decides; everything but a 200
// text/plain policy of at most 64 KiB, over TLS verified for
// mta-sts.DOMAIN, within the timeout, is an error that says whether it is
// temporary.
func TestFetch(t *testing.T) {
	cases := []struct {
		name  string
		resp  ststest.Response
		certs []string // the server's names ("" = mta-sts.remote.test)
		other bool     // a certificate of another CA
		want  error
		text  string
	}{
		{name: "good", resp: ststest.Response{Body: enforce}},
		{name: "charset parameter", resp: ststest.Response{Body: enforce, ContentType: "text/plain; charset=utf-8"}},
		{name: "404", resp: ststest.Response{Status: 404}, want: ErrNoPolicy},
		{name: "500", resp: ststest.Response{Status: 500, Body: enforce}, want: ErrFetch, text: "500"},
		{name: "redirect", resp: ststest.Response{Status: 302, Location: "https://mta-sts.remote.test/elsewhere"}, want: ErrFetch, text: "redirect"},
		{name: "text/html", resp: ststest.Response{Body: enforce, ContentType: "text/html"}, want: ErrFetch, text: "text/plain"},
		{name: "too large", resp: ststest.Response{Body: enforce + strings.Repeat("x-pad: "+strings.Repeat("y", 90)+"\n", 700)}, want: ErrFetch, text: "larger"},
		{name: "malformed", resp: ststest.Response{Body: "version: STSv1\nmode: enforce\nmax_age: 5\n"}, want: ErrPolicySyntax, text: "no mx"},
		{name: "certificate for another name", resp: ststest.Response{Body: enforce}, certs: []string{"www.remote.test"}, want: ErrFetch, text: "certificate"},
		{name: "certificate of another CA", resp: ststest.Response{Body: enforce}, other: true, want: ErrFetch, text: "certificate"},
		{name: "hangs", resp: ststest.Response{Hang: true}, want: ErrFetch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.certs...)
			if tc.other {
				e = newEnvTLS(t, func(*testca.CA) *tls.Config {
					return testca.New(t, "another CA").ServerTLS(t, "mta-sts.remote.test")
				})
			}
			e.web.Respond("remote.test", tc.resp)
			f := e.fetcher()
			if tc.resp.Hang {
				f.Timeout = 300 * time.Millisecond
			}
			p, err := f.Fetch(ctx(t), "remote.test")
			if tc.want == nil {
				if err != nil || p.Mode != ModeEnforce || !p.Match("mx.remote.test") {
					t.Fatalf("got %+v, %v", p, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v with %q", err, tc.want, tc.text)
			}
			if mail.IsTemporary(err) != (tc.want == ErrFetch) {
				t.Fatalf("%v: temporary = %v", err, mail.IsTemporary(err))
			}
		})
	}
	t.Run("no policy host", func(t *testing.T) {
		e := newEnv(t)
		e.dns.Set("mta-sts.remote.test")
		if _, err := e.fetcher().Fetch(ctx(t), "remote.test"); !errors.Is(err, ErrNoPolicy) {
			t.Fatalf("got %v, want ErrNoPolicy", err)
		}
	})
}

func TestLookupRecord(t *testing.T) {
	for name, tc := range map[string]struct {
		txt  []string
		fail bool
		want error
		id   string
	}{
		"one":            {txt: []string{`TXT "v=STSv1; id=abc"`}, id: "abc"},
		"others ignored": {txt: []string{`TXT "v=spf1 -all"`, `TXT "v=STSv1; id=abc"`}, id: "abc"},
		"split strings":  {txt: []string{`TXT "v=STSv1; " "id=abc"`}, id: "abc"},
		"none":           {want: ErrNoRecord},
		"only others":    {txt: []string{`TXT "hello"`}, want: ErrNoRecord},
		"two":            {txt: []string{`TXT "v=STSv1; id=a"`, `TXT "v=STSv1; id=b"`}, want: ErrMultipleRecords},
		"malformed":      {txt: []string{`TXT "v=STSv1; id=a-b"`}, want: ErrRecordSyntax},
		"SERVFAIL":       {fail: true, want: ErrDNS},
	} {
		t.Run(name, func(t *testing.T) {
			dns := dnstest.Start(t, nil)
			if tc.txt != nil {
				if err := dns.Set("_mta-sts.remote.test", tc.txt...); err != nil {
					t.Fatal(err)
				}
			}
			if tc.fail {
				dns.Fail("_mta-sts.remote.test", 2)
			}
			res, _ := resolve.New(resolve.Config{Server: dns.Addr(), Timeout: time.Second})
			r, err := LookupRecord(ctx(t), res, "remote.test")
			if tc.want != nil {
				if !errors.Is(err, tc.want) || mail.IsTemporary(err) != (tc.want == ErrDNS) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil || r.ID != tc.id {
				t.Fatalf("got %+v, %v", r, err)
			}
		})
	}
}

// TestSourceCachesAndRefreshes: the policy is fetched once per record id,
// kept across a restart (the cache file), fetched again when the id
// changes, and kept in force when the record or the fetch fails.
func TestSourceCachesAndRefreshes(t *testing.T) {
	e := newEnv(t)
	e.web.Serve("remote.test", enforce)
	file := filepath.Join(t.TempDir(), "mta-sts.json")
	s := e.source(t, file)
	l := s.Get(ctx(t), "Remote.Test.")
	if l.Policy == nil || l.Policy.Mode != ModeEnforce || l.ID != "one" || l.How != "fetched" {
		t.Fatalf("first lookup: %+v", l)
	}
	if l := s.Get(ctx(t), "remote.test"); l.How != "cached" || e.web.Requests("remote.test") != 1 {
		t.Fatalf("second lookup: %+v, %d fetches", l, e.web.Requests("remote.test"))
	}

	// A restart: the cache file has it.
	s = e.source(t, file)
	if l := s.Get(ctx(t), "remote.test"); l.How != "cached" || l.Policy.Mode != ModeEnforce || e.web.Requests("remote.test") != 1 {
		t.Fatalf("after a restart: %+v, %d fetches", l, e.web.Requests("remote.test"))
	}

	// A new id: fetched again.
	e.web.Serve("remote.test", strings.Replace(enforce, "enforce", "testing", 1))
	e.dns.Set("_mta-sts.remote.test", `1 TXT "v=STSv1; id=two"`)
	if !(s.Get(ctx(t), "remote.test").ID == "two") {
		t.Fatal("the change of the zone was not seen")
	}
	if l := s.Get(ctx(t), "remote.test"); l.Policy.Mode != ModeTesting || e.web.Requests("remote.test") != 2 {
		t.Fatalf("after the id changed: %+v, %d fetches", l, e.web.Requests("remote.test"))
	}

	// The record goes away or fails: the cached policy still applies.
	e.dns.Set("_mta-sts.remote.test")
	if !(strings.Contains(s.Get(ctx(t), "remote.test").How, "no record")) {
		t.Fatal("the change of the zone was not seen")
	}
	if l := s.Get(ctx(t), "remote.test"); l.Policy == nil || l.Policy.Mode != ModeTesting {
		t.Fatalf("without the record: %+v", l)
	}
	e.dns.Fail("_mta-sts.remote.test", 2)
	if l := s.Get(ctx(t), "remote.test"); l.Policy == nil || !strings.Contains(l.How, "could not be looked up") {
		t.Fatalf("the record fails: %+v", l)
	}

	// A new id whose policy cannot be fetched: the cached one, and the
	// failure is not retried at once.
	e.dns.Fail("_mta-sts.remote.test", 0)
	e.dns.Set("_mta-sts.remote.test", `1 TXT "v=STSv1; id=three"`)
	e.web.Respond("remote.test", ststest.Response{Status: 503})
	if !(strings.Contains(s.Get(ctx(t), "remote.test").How, "id three")) {
		t.Fatal("the change of the zone was not seen")
	}
	n := e.web.Requests("remote.test")
	if l := s.Get(ctx(t), "remote.test"); l.Policy == nil || l.ID != "two" || !strings.Contains(l.How, "503") {
		t.Fatalf("the fetch fails: %+v", l)
	}
	if e.web.Requests("remote.test") != n {
		t.Fatal("a failed fetch was tried again at once")
	}
}

// TestSourceNoPolicy: without anything cached, a missing or malformed
// record, a failed fetch or a malformed policy is no policy, never a
// failure of the delivery.
func TestSourceNoPolicy(t *testing.T) {
	for name, set := range map[string]func(e *env){
		"no record":           func(e *env) { e.dns.Set("_mta-sts.remote.test") },
		"malformed record":    func(e *env) { e.dns.Set("_mta-sts.remote.test", `TXT "v=STSv1; id=-"`) },
		"SERVFAIL":            func(e *env) { e.dns.Fail("_mta-sts.remote.test", 2) },
		"no policy host":      func(e *env) { e.dns.Set("mta-sts.remote.test") },
		"malformed policy":    func(e *env) { e.web.Serve("remote.test", "mode: enforce\n") },
		"expired certificate": nil,
	} {
		t.Run(name, func(t *testing.T) {
			var e *env
			if set == nil {
				e = newEnvTLS(t, func(ca *testca.CA) *tls.Config {
					return &tls.Config{Certificates: []tls.Certificate{ca.Expired(t, "mta-sts.remote.test")}}
				})
			} else {
				e = newEnv(t)
			}
			e.web.Serve("remote.test", enforce)
			if set != nil {
				set(e)
			}
			l := e.source(t, "").Get(ctx(t), "remote.test")
			t.Log(l.How)
			if l.Policy != nil || l.How == "" {
				t.Fatalf("got %+v, want no policy and why", l)
			}
		})
	}
}

// TestSourceOneFetchForConcurrentLookups: deliveries to one domain at
// the same moment share one fetch.
func TestSourceOneFetchForConcurrentLookups(t *testing.T) {
	e := newEnv(t)
	e.web.Serve("remote.test", enforce)
	s := e.source(t, "")
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l := s.Get(ctx(t), "remote.test"); l.Policy == nil {
				t.Errorf("no policy: %+v", l)
			}
		}()
	}
	wg.Wait()
	if n := e.web.Requests("remote.test"); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

// TestSourceExpiry: a cached policy past its max_age is not applied.
func TestSourceExpiry(t *testing.T) {
	e := newEnv(t)
	e.web.Serve("remote.test", strings.Replace(enforce, "86400", "60", 1))
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := New(Config{Resolver: e.res, Roots: e.ca.Pool(), Port: e.port, Timeout: 2 * time.Second, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if l := s.Get(ctx(t), "remote.test"); l.Policy == nil {
		t.Fatalf("%+v", l)
	}
	e.web.Respond("remote.test", ststest.Response{Status: http.StatusServiceUnavailable})
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	if l := s.Get(ctx(t), "remote.test"); l.Policy != nil {
		t.Fatalf("an expired policy applies: %+v", l)
	}
}

// TestSourceDamagedCacheFile: a cache file that does not parse is
// replaced, not fatal; one that cannot be read is an error.
func TestSourceDamagedCacheFile(t *testing.T) {
	e := newEnv(t)
	e.web.Serve("remote.test", enforce)
	file := filepath.Join(t.TempDir(), "mta-sts.json")
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := e.source(t, file)
	if s.Cached() != 0 {
		t.Fatal("a damaged cache has entries")
	}
	if l := s.Get(ctx(t), "remote.test"); l.How != "fetched" {
		t.Fatalf("%+v", l)
	}
	if s2 := e.source(t, file); s2.Cached() != 1 {
		t.Fatal("the damaged file was not replaced")
	}
	if _, err := New(Config{Resolver: e.res, CacheFile: t.TempDir()}); err == nil {
		t.Fatal("a cache path that is a directory opened")
	}
}
