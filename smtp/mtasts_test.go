package smtp

import (
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/mtasts"
	"github.com/homing-mail/homing/resolve"
	"github.com/homing-mail/homing/testkit/dnstest"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/ststest"
	"github.com/homing-mail/homing/testkit/testca"
	"github.com/homing-mail/homing/testkit/tlog"
)

// stsWorld is a loopback world for MTA-STS: remote.test has the MX
// hosts the test starts (all on one port, on 127.0.0.1, 127.0.0.2...), a
// TXT record _mta-sts.remote.test, and a policy served over HTTPS by
// mta-sts.remote.test (127.0.0.1, a certificate of the test CA).
type stsWorld struct {
	ca   *testca.CA
	dns  *dnstest.Server
	web  *ststest.Server
	res  *resolve.Resolver
	port int // of every MX host
	mxs  map[string]*fakemx.Server
	pref map[string]int
	log  *tlog.Lines
	reg  *prometheus.Registry
	mu   sync.Mutex
	jour []string
}

func newSTSWorld(t *testing.T, policy string) *stsWorld {
	t.Helper()
	w := &stsWorld{ca: testca.New(t, "test CA"), mxs: map[string]*fakemx.Server{}, pref: map[string]int{}, log: &tlog.Lines{}, reg: prometheus.NewRegistry()}
	w.web = ststest.Start(t, w.ca.ServerTLS(t, "mta-sts.remote.test"))
	w.web.Serve("remote.test", policy)
	w.dns = dnstest.Start(t, dnstest.Zone{
		"mta-sts.remote.test":  {"A 127.0.0.1"},
		"_mta-sts.remote.test": {`TXT "v=STSv1; id=20261201"`},
	})
	var err error
	w.res, err = resolve.New(resolve.Config{Server: w.dns.Addr(), Timeout: time.Second, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// mx starts an MX host name at ip (on the world's port) with tlsCfg
// (nil: no STARTTLS), and lists it in the MX records with pref.
func (w *stsWorld) mx(t *testing.T, name, ip string, pref int, tlsCfg *tls.Config) *fakemx.Server {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(w.port)))
	if err != nil {
		t.Fatal(err)
	}
	if w.port == 0 {
		_, p, _ := net.SplitHostPort(l.Addr().String())
		w.port, _ = strconv.Atoi(p)
	}
	s := fakemx.Serve(l, func(s *gosmtp.Server) { s.TLSConfig = tlsCfg })
	t.Cleanup(func() { s.Close() })
	w.mxs[name], w.pref[name] = s, pref
	var recs []string
	for n, p := range w.pref {
		recs = append(recs, "MX "+strconv.Itoa(p)+" "+n+".")
	}
	if err := w.dns.Set("remote.test", recs...); err != nil {
		t.Fatal(err)
	}
	if err := w.dns.Set(name, "A "+ip); err != nil {
		t.Fatal(err)
	}
	return s
}

func (w *stsWorld) client(t *testing.T) *Client {
	t.Helper()
	src, err := mtasts.New(mtasts.Config{Resolver: w.res, Roots: w.ca.Pool(), Port: w.web.Port, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return NewClient(ClientConfig{Hostname: "relay.example.test", Resolver: w.res, Port: w.port, MTASTS: src, RootCAs: w.ca.Pool(),
		Metrics: NewClientMetrics(w.reg), Logger: tlog.New(t, "relay", tlog.KeepIn(w.log)),
		Journal: func(id, event, detail string) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.jour = append(w.jour, id+" "+event+" "+detail)
		}})
}

func (w *stsWorld) journey() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.jour, "\n")
}

func (w *stsWorld) count(policy, result string) int {
	return int(testutil.ToFloat64(NewClientMetrics(w.reg).tls.WithLabelValues(policy, result)))
}

func stsPolicy(mode string, mx ...string) string {
	p := "version: STSv1\nmode: " + mode + "\n"
	for _, m := range mx {
		p += "mx: " + m + "\n"
	}
	return p + "max_age: 86400\n"
}

func sendOne(t *testing.T, cl *Client) mail.Result {
	t.Helper()
	return cl.Send(sendCtx(t), msgOf(&mail.Envelope{ID: "Q1", From: "s@example.test"}, rcptsOf("a@remote.test"), testBody))[0]
}

func gotData(mx *fakemx.Server) bool {
	for _, tx := range mx.Transactions() {
		if tx.DataSeen {
			return true
		}
	}
	return false
}

// TestMTASTSEnforce: with a policy in mode enforce the MX host's
// certificate must verify against the trust roots for the MX name, over
// STARTTLS, or the message is deferred with a 4.7.5 that names the
// policy, and nothing is sent to that host.
func TestMTASTSEnforce(t *testing.T) {
	cases := []struct {
		name    string
		cert    func(w *stsWorld) *tls.Config // nil: no STARTTLS
		deliver bool
		reason  string
	}{
		{name: "a certificate of the trusted CA for the MX name", cert: func(w *stsWorld) *tls.Config { return w.ca.ServerTLS(t, "mx.remote.test") }, deliver: true},
		{name: "a wildcard certificate", cert: func(w *stsWorld) *tls.Config { return w.ca.ServerTLS(t, "*.remote.test") }, deliver: true},
		{name: "a certificate of another CA", cert: func(*stsWorld) *tls.Config {
			return testca.New(t, "stranger").ServerTLS(t, "mx.remote.test")
		}, reason: "certificate signed by unknown authority"},
		{name: "a certificate for another name", cert: func(w *stsWorld) *tls.Config { return w.ca.ServerTLS(t, "other.test") }, reason: "valid for other.test, not mx.remote.test"},
		{name: "an expired certificate", cert: func(w *stsWorld) *tls.Config {
			return &tls.Config{Certificates: []tls.Certificate{w.ca.Expired(t, "mx.remote.test")}}
		}, reason: "expired"},
		{name: "no STARTTLS", reason: "does not offer STARTTLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newSTSWorld(t, stsPolicy("enforce", "mx.remote.test"))
			var cfg *tls.Config
			if tc.cert != nil {
				cfg = tc.cert(w)
			}
			mx := w.mx(t, "mx.remote.test", "127.0.0.1", 10, cfg)
			res := sendOne(t, w.client(t))
			if tc.deliver {
				if !res.OK() || len(mx.Messages()) != 1 || !mx.Messages()[0].TLS {
					t.Fatalf("want delivered over TLS: %+v", res)
				}
				if w.count(TLSPolicyMTASTS, "verified") != 1 || !strings.Contains(w.journey(), "certificate verified (the MTA-STS policy of remote.test (mode enforce") ||
					!strings.Contains(w.journey(), "Q1 mta-sts remote.test: mode enforce, mx mx.remote.test, id 20261201 (fetched)") {
					t.Fatalf("outcome not recorded: journey %q", w.journey())
				}
				return
			}
			if !res.Temporary() || res.Status != mail.StatusTLSFailed || !strings.Contains(res.Text, tc.reason) ||
				!strings.Contains(res.Text, "MTA-STS policy of remote.test (mode enforce, id 20261201)") {
				t.Fatalf("want a temporary 4.7.5 naming the policy and %q: %+v", tc.reason, res)
			}
			if gotData(mx) {
				t.Fatal("the message was sent to a host the policy refuses")
			}
			if w.count(TLSPolicyMTASTS, "failed") != 1 || !strings.Contains(w.journey(), "Q1 tls mx.remote.test") {
				t.Fatalf("failure not recorded: journey %q", w.journey())
			}
		})
	}
}

// TestMTASTSOnlyListedMXHosts: an MX host the enforced policy does not
// list is not connected to; the listed one gets the message. When none
// is listed the message is deferred.
func TestMTASTSOnlyListedMXHosts(t *testing.T) {
	w := newSTSWorld(t, stsPolicy("enforce", "*.mail.remote.test"))
	rogue := w.mx(t, "mx.remote.test", "127.0.0.1", 5, w.ca.ServerTLS(t, "mx.remote.test"))
	good := w.mx(t, "in.mail.remote.test", "127.0.0.2", 20, w.ca.ServerTLS(t, "in.mail.remote.test"))
	res := sendOne(t, w.client(t))
	if !res.OK() || len(good.Messages()) != 1 || res.RemoteMTA != "in.mail.remote.test" {
		t.Fatalf("want delivered to the listed MX host: %+v", res)
	}
	if rogue.Connections() != 0 {
		t.Fatalf("the MX host outside the policy got %d connections", rogue.Connections())
	}
	if w.count(TLSPolicyMTASTS, "mx-mismatch") != 1 || !strings.Contains(w.journey(), "mx.remote.test: not used: MTA-STS") {
		t.Fatalf("the skipped host is not recorded: %q", w.journey())
	}

	w2 := newSTSWorld(t, stsPolicy("enforce", "mx.elsewhere.test"))
	only := w2.mx(t, "mx.remote.test", "127.0.0.1", 10, w2.ca.ServerTLS(t, "mx.remote.test"))
	res = sendOne(t, w2.client(t))
	if !res.Temporary() || res.Status != mail.StatusTLSFailed || !strings.Contains(res.Text, "is not an MX host that the MTA-STS policy") || only.Connections() != 0 {
		t.Fatalf("want deferred without a connection: %+v (%d connections)", res, only.Connections())
	}
}

// TestMTASTSTesting: mode testing delivers whatever the certificate or
// the MX list say, and logs what enforce would have refused.
func TestMTASTSTesting(t *testing.T) {
	w := newSTSWorld(t, stsPolicy("testing", "other.remote.test"))
	mx := w.mx(t, "mx.remote.test", "127.0.0.1", 10, testca.New(t, "stranger").ServerTLS(t, "mx.remote.test"))
	res := sendOne(t, w.client(t))
	if !res.OK() || len(mx.Messages()) != 1 || !mx.Messages()[0].TLS {
		t.Fatalf("mode testing must deliver: %+v", res)
	}
	if w.log.Count("MTA-STS testing: the MX host is not in the policy") != 1 ||
		w.log.Count("MTA-STS testing: the certificate of the MX host does not verify", "unknown authority") != 1 {
		t.Fatalf("the failures are not logged:\n%s", w.log)
	}
	if w.count(TLSPolicyMTASTSTesting, "unverified") != 1 || !strings.Contains(w.journey(), "NOT verified") {
		t.Fatalf("outcome not recorded: %q", w.journey())
	}

	// Without STARTTLS at all: plaintext, logged.
	w = newSTSWorld(t, stsPolicy("testing", "mx.remote.test"))
	mx = w.mx(t, "mx.remote.test", "127.0.0.1", 10, nil)
	if res := sendOne(t, w.client(t)); !res.OK() || mx.Messages()[0].TLS {
		t.Fatalf("want delivered in plaintext: %+v", res)
	}
	if w.log.Count("MTA-STS testing: no TLS") != 1 || w.count(TLSPolicyMTASTSTesting, "plaintext") != 1 {
		t.Fatalf("not logged:\n%s", w.log)
	}
}

// TestMTASTSNoPolicy: mode none, a policy that cannot be fetched (the
// policy host's certificate does not verify, or the policy is
// malformed) and no record at all are no policy: opportunistic TLS
// delivers even with a certificate that would not verify.
func TestMTASTSNoPolicy(t *testing.T) {
	for name, set := range map[string]func(w *stsWorld){
		"mode none":           func(w *stsWorld) { w.web.Serve("remote.test", "version: STSv1\nmode: none\nmax_age: 86400\n") },
		"malformed policy":    func(w *stsWorld) { w.web.Serve("remote.test", "version: STSv1\nmode: enforce\nmax_age: 86400\n") },
		"malformed TXT":       func(w *stsWorld) { w.dns.Set("_mta-sts.remote.test", `TXT "v=STSv1; id=no-dashes"`) },
		"no record":           func(w *stsWorld) { w.dns.Set("_mta-sts.remote.test") },
		"policy host unknown": func(w *stsWorld) { w.dns.Set("mta-sts.remote.test") },
		"policy host redirect": func(w *stsWorld) {
			w.web.Respond("remote.test", ststest.Response{Status: 301, Location: "https://x.test/"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := newSTSWorld(t, stsPolicy("enforce", "mx.remote.test"))
			set(w)
			mx := w.mx(t, "mx.remote.test", "127.0.0.1", 10, testca.New(t, "stranger").ServerTLS(t, "mx.remote.test"))
			if res := sendOne(t, w.client(t)); !res.OK() || !mx.Messages()[0].TLS {
				t.Fatalf("want delivered opportunistically: %+v", res)
			}
			if w.count(TLSPolicyOpportunistic, "unverified") != 1 {
				t.Fatal("not counted as opportunistic")
			}
			if j := w.journey(); name != "no record" && !strings.Contains(j, "Q1 mta-sts remote.test: ") {
				t.Fatalf("the journey does not say why no policy applies: %q", j)
			}
		})
	}
	t.Run("the policy host's certificate does not verify", func(t *testing.T) {
		w := newSTSWorld(t, stsPolicy("enforce", "mx.remote.test"))
		w.web = ststest.Start(t, testca.New(t, "stranger").ServerTLS(t, "mta-sts.remote.test"))
		w.web.Serve("remote.test", stsPolicy("enforce", "mx.remote.test"))
		mx := w.mx(t, "mx.remote.test", "127.0.0.1", 10, testca.New(t, "stranger").ServerTLS(t, "mx.remote.test"))
		if res := sendOne(t, w.client(t)); !res.OK() || len(mx.Messages()) != 1 {
			t.Fatalf("want delivered: %+v", res)
		}
	})
}

// TestMTASTSDANETakesPrecedence: an MX host with validated TLSA records
// is verified by DANE alone (RFC 8461 §2): a matching record delivers
// even where the enforced policy would refuse the host, and a failing
// one defers even where the policy would accept it.
func TestMTASTSDANETakesPrecedence(t *testing.T) {
	w := newSTSWorld(t, stsPolicy("enforce", "mx.elsewhere.test"))
	stranger := testca.New(t, "stranger").Leaf(t, "mx.remote.test")
	mx := w.mx(t, "mx.remote.test", "127.0.0.1", 10, &tls.Config{Certificates: []tls.Certificate{stranger}})
	tlsaName := "_" + strconv.Itoa(w.port) + "._tcp.mx.remote.test"
	w.dns.Set(tlsaName, "TLSA 3 1 1 "+sha256Hex(stranger.Leaf.RawSubjectPublicKeyInfo))
	w.dns.Secure(tlsaName)
	cl := w.client(t)
	cl.cfg.DANE = tlsaOf{w.res}
	if res := sendOne(t, cl); !res.OK() || len(mx.Messages()) != 1 {
		t.Fatalf("DANE must decide: %+v", res)
	}
	if w.count(TLSPolicyDANE, "verified") != 1 || w.count(TLSPolicyMTASTS, "mx-mismatch") != 0 {
		t.Fatal("not counted as DANE")
	}

	w = newSTSWorld(t, stsPolicy("enforce", "mx.remote.test"))
	good := w.ca.ServerTLS(t, "mx.remote.test")
	mx = w.mx(t, "mx.remote.test", "127.0.0.1", 10, good)
	tlsaName = "_" + strconv.Itoa(w.port) + "._tcp.mx.remote.test"
	w.dns.Set(tlsaName, "TLSA 3 1 1 "+sha256Hex([]byte("another key")))
	w.dns.Secure(tlsaName)
	cl = w.client(t)
	cl.cfg.DANE = tlsaOf{w.res}
	if res := sendOne(t, cl); !res.Temporary() || !strings.Contains(res.Text, "TLSA") || gotData(mx) {
		t.Fatalf("a failing DANE check must defer whatever MTA-STS says: %+v", res)
	}
}

// TestMTASTSNotForRoutes: a static route is the operator's choice: the
// domain's policy does not apply to it.
func TestMTASTSNotForRoutes(t *testing.T) {
	w := newSTSWorld(t, stsPolicy("enforce", "mx.remote.test"))
	mx := fakemx.Start(t, func(s *gosmtp.Server) { s.TLSConfig = testca.New(t, "stranger").ServerTLS(t, "relay.test") })
	cl := w.client(t)
	cl.cfg.Routes = map[string]string{"remote.test": mx.Addr}
	if res := sendOne(t, cl); !res.OK() || len(mx.Messages()) != 1 {
		t.Fatalf("want delivered by the route: %+v", res)
	}
	if w.web.Requests("remote.test") != 0 {
		t.Fatal("the policy was fetched for a routed domain")
	}
}
