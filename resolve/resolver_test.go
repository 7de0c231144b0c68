package resolve

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/homing-mail/homing/testkit/clock"
	"github.com/homing-mail/homing/testkit/dnstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newResolver(t *testing.T, srv *dnstest.Server, c *clock.Clock) *Resolver {
	t.Helper()
	cfg := Config{Server: srv.Addr(), Timeout: 300 * time.Millisecond}
	if c != nil {
		cfg.Now = c.Now
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func dnsErr(t *testing.T, err error) *net.DNSError {
	t.Helper()
	var de *net.DNSError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *net.DNSError", err, err)
	}
	return de
}

func TestLookupsAnswerFromTheServer(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{
		"example.test":           {"MX 20 mx2.example.test.", "MX 10 mx1.example.test.", `TXT "v=spf1 " "-all"`, `TXT "other"`},
		"mx1.example.test":       {"A 127.0.0.2", "AAAA ::1"},
		"alias.example.test":     {"CNAME mx1.example.test."},
		"2.0.0.127.in-addr.arpa": {"PTR mx1.example.test."},
	})
	r := newResolver(t, srv, nil)
	ctx := context.Background()

	mxs, err := r.LookupMX(ctx, "Example.TEST")
	if err != nil || len(mxs) != 2 || mxs[0].Host != "mx1.example.test." || mxs[0].Pref != 10 || mxs[1].Pref != 20 {
		t.Fatalf("LookupMX = %v, %v; want mx1 (10) then mx2 (20)", mxs, err)
	}
	txts, err := r.LookupTXT(ctx, "example.test")
	if err != nil || len(txts) != 2 || txts[0] != "v=spf1 -all" || txts[1] != "other" {
		t.Fatalf("LookupTXT = %q, %v; want the strings of each record joined", txts, err)
	}
	hosts, err := r.LookupHost(ctx, "alias.example.test")
	if err != nil || strings.Join(hosts, ",") != "127.0.0.2,::1" {
		t.Fatalf("LookupHost through a CNAME = %v, %v", hosts, err)
	}
	names, err := r.LookupAddr(ctx, "127.0.0.2")
	if err != nil || len(names) != 1 || names[0] != "mx1.example.test." {
		t.Fatalf("LookupAddr = %v, %v", names, err)
	}
}

func TestNotFoundTemporaryAndTimeoutAreTold(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{
		"example.test":        {"A 127.0.0.1"},
		"a.b.example.test":    {"A 127.0.0.1"},
		"broken.example.test": {"A 127.0.0.1"},
		"slow.example.test":   {"A 127.0.0.1"},
	})
	srv.Fail("broken.example.test", 2) // SERVFAIL
	srv.Drop("slow.example.test")
	r := newResolver(t, srv, nil)
	ctx := context.Background()

	_, err := r.LookupTXT(ctx, "nothing.example.test")
	if de := dnsErr(t, err); !de.IsNotFound || de.Temporary() {
		t.Errorf("NXDOMAIN: %+v, want IsNotFound and not temporary", de)
	}
	_, err = r.LookupTXT(ctx, "example.test")
	if de := dnsErr(t, err); !de.IsNotFound {
		t.Errorf("no TXT at an existing name: %+v, want IsNotFound", de)
	}
	_, err = r.LookupTXT(ctx, "b.example.test")
	if de := dnsErr(t, err); !de.IsNotFound {
		t.Errorf("empty non-terminal: %+v, want IsNotFound", de)
	}
	_, err = r.LookupTXT(ctx, "broken.example.test")
	if de := dnsErr(t, err); de.IsNotFound || !de.Temporary() {
		t.Errorf("SERVFAIL: %+v, want temporary", de)
	}
	start := time.Now()
	_, err = r.LookupHost(ctx, "slow.example.test")
	if de := dnsErr(t, err); !de.IsTimeout || !de.Temporary() {
		t.Errorf("no answer: %+v, want a timeout", de)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the timeout took %v; want about 2 x 300 ms", d)
	}
	_, err = r.LookupTXT(ctx, "bad..name")
	if de := dnsErr(t, err); de.IsNotFound || de.Temporary() {
		t.Errorf("a malformed name: %+v, want a permanent error", de)
	}
}

func TestCacheHonoursTTLs(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{
		"short.example.test": {`60 TXT "one"`},
		"long.example.test":  {`3600 TXT "two"`, `600 TXT "three"`},
	})
	c := clock.New(time.Time{})
	r := newResolver(t, srv, c)
	ctx := context.Background()
	ask := func(name string) {
		t.Helper()
		if _, err := r.LookupTXT(ctx, name); err != nil {
			t.Fatalf("LookupTXT %s: %v", name, err)
		}
	}
	ask("short.example.test")
	ask("short.example.test")
	ask("long.example.test")
	if q := srv.Queries("short.example.test", "TXT"); q != 1 {
		t.Fatalf("within its TTL the answer came from the server %d times, want 1", q)
	}
	c.Advance(61 * time.Second)
	ask("short.example.test")
	ask("long.example.test")
	if q := srv.Queries("short.example.test", "TXT"); q != 2 {
		t.Fatalf("after its TTL of 60 s: %d queries, want 2", q)
	}
	// The least TTL of the records decides: 600 s, not 3600 s.
	c.Advance(540 * time.Second)
	ask("long.example.test")
	if q := srv.Queries("long.example.test", "TXT"); q != 2 {
		t.Fatalf("after 601 s the 600 s record set was asked %d times, want 2", q)
	}

	// A negative answer is kept for the SOA's minimum (60 s here).
	_, _ = r.LookupTXT(ctx, "missing.example.test")
	_, _ = r.LookupTXT(ctx, "missing.example.test")
	if q := srv.Queries("missing.example.test", "TXT"); q != 1 {
		t.Fatalf("a negative answer was asked %d times within its TTL, want 1", q)
	}
	srv.Set("missing.example.test", `TXT "now here"`)
	c.Advance(61 * time.Second)
	if txts, err := r.LookupTXT(ctx, "missing.example.test"); err != nil || txts[0] != "now here" {
		t.Fatalf("after the negative TTL: %v, %v", txts, err)
	}

	// Failures are not cached.
	srv.Fail("short.example.test", 2)
	c.Advance(61 * time.Second)
	_, _ = r.LookupTXT(ctx, "short.example.test")
	_, _ = r.LookupTXT(ctx, "short.example.test")
	if q := srv.Queries("short.example.test", "TXT"); q != 4 {
		t.Fatalf("SERVFAIL answers: %d queries in all, want 4 (none cached)", q)
	}
}

func TestCacheIsBounded(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{})
	for _, n := range []string{"a", "b", "c", "d"} {
		srv.Set(n+".example.test", `TXT "x"`)
	}
	r, err := New(Config{Server: srv.Addr(), CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c", "d", "d"} {
		if _, err := r.LookupTXT(ctx, n+".example.test"); err != nil {
			t.Fatal(err)
		}
	}
	if r.CacheLen() != 2 {
		t.Fatalf("cache holds %d answers, want at most 2", r.CacheLen())
	}
	_, _ = r.LookupTXT(ctx, "a.example.test")
	if q := srv.Queries("a.example.test", "TXT"); q != 2 {
		t.Fatalf("the least recently used answer was kept (%d queries, want 2)", q)
	}
	if q := srv.Queries("d.example.test", "TXT"); q != 1 {
		t.Fatalf("a recent answer was dropped (%d queries, want 1)", q)
	}
}

func TestTLSAWithTheADBitAndATruncatedAnswer(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	srv := dnstest.Start(t, dnstest.Zone{
		"_25._tcp.mx.example.test":    {"TLSA 3 1 1 " + hash},
		"_25._tcp.plain.example.test": {"TLSA 3 1 1 " + hash},
	})
	srv.Secure("_25._tcp.mx.example.test")
	var big []string
	for i := 0; i < 40; i++ {
		big = append(big, `TXT "`+strings.Repeat("y", 200)+`"`)
	}
	srv.Set("big.example.test", big...)
	r := newResolver(t, srv, nil)
	ctx := context.Background()

	recs, secure, err := r.LookupTLSA(ctx, 25, "mx.example.test")
	if err != nil || !secure || len(recs) != 1 || recs[0].Usage != 3 || recs[0].Selector != 1 || recs[0].MatchingType != 1 || len(recs[0].Data) != 32 {
		t.Fatalf("LookupTLSA = %+v, %v, %v; want one DANE-EE record, validated", recs, secure, err)
	}
	if _, secure, err := r.LookupTLSA(ctx, 25, "plain.example.test"); err != nil || secure {
		t.Fatalf("without AD: secure=%v, %v; want false", secure, err)
	}
	txts, err := r.LookupTXT(ctx, "big.example.test")
	if err != nil || len(txts) != 40 {
		t.Fatalf("a truncated UDP answer retried over TCP: %d records, %v; want 40", len(txts), err)
	}
}

func TestServersFromResolvConf(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "resolv.conf")
	os.WriteFile(file, []byte("# test\nnameserver 127.0.0.53\nnameserver ::1\nsearch x\n"), 0o600)
	r, err := New(Config{ResolvConf: file})
	if err != nil || strings.Join(r.Servers(), " ") != "127.0.0.53:53 [::1]:53" {
		t.Fatalf("servers = %v, %v", r, err)
	}
	os.WriteFile(file, []byte("search x\n"), 0o600)
	if r, err := New(Config{ResolvConf: file}); err != nil || strings.Join(r.Servers(), " ") != "127.0.0.1:53 [::1]:53" {
		t.Fatalf("no nameserver: %v, %v; want this host's resolver", r, err)
	}
	if _, err := New(Config{Server: "127.0.0.1"}); err == nil {
		t.Fatal("--dns without a port was accepted")
	}
}
