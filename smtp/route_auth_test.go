package smtp

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/resolve"
	"github.com/homing-mail/homing/testkit/dnstest"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/testca"
)

// smarthostClient is a client with a route of remote.test to
// smarthost.test (127.0.0.1 in a loopback zone) at mx's port, the
// credentials creds (none when empty) and TLS level lvl ("" none).
func smarthostClient(t *testing.T, mx *fakemx.Server, ca *testca.CA, lvl RouteTLS, creds map[string]Credential) (*Client, *ClientMetrics) {
	t.Helper()
	dns := dnstest.Start(t, dnstest.Zone{"smarthost.test": {"A 127.0.0.1"}})
	res, err := resolve.New(resolve.Config{Server: dns.Addr(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(mx.Addr)
	m := NewClientMetrics(prometheus.NewRegistry())
	cfg := ClientConfig{Resolver: res, RootCAs: ca.Pool(), Metrics: m,
		Routes: map[string]string{"remote.test": "smarthost.test:" + port}}
	if lvl != "" {
		cfg.RouteTLS = map[string]RouteTLS{"remote.test": lvl}
	}
	if creds != nil {
		cfg.Credentials = func(route, host string, _ int) (Credential, bool) {
			if c, ok := creds[route]; ok {
				return c, true
			}
			c, ok := creds[host]
			return c, ok
		}
	}
	return NewClient(cfg), m
}

func authCount(m *ClientMetrics, result string) int {
	return int(testutil.ToFloat64(m.auth.WithLabelValues(result)))
}

// TestRouteCredentials: a route with credentials authenticates with AUTH
// PLAIN after STARTTLS, the smarthost's certificate verified; wrong
// credentials (535) defer the message with the smarthost's reply in the
// reason; a smarthost without STARTTLS never sees the password.
func TestRouteCredentials(t *testing.T) {
	ca := testca.New(t, "test CA")
	secure := func(s *gosmtp.Server) { s.TLSConfig = ca.ServerTLS(t, "smarthost.test") }

	t.Run("accepted", func(t *testing.T) {
		mx := fakemx.Start(t, secure)
		mx.RequireAuth("relay-user", "s3cret pass")
		cl, m := smarthostClient(t, mx, ca, "", map[string]Credential{"remote.test": {"relay-user", "s3cret pass"}})
		if res := sendOne(t, cl); !res.OK() {
			t.Fatalf("want delivered: %+v", res)
		}
		got := mx.Messages()
		if len(got) != 1 || got[0].AuthUser != "relay-user" || !got[0].TLS {
			t.Fatalf("want one message over TLS from relay-user: %+v", got)
		}
		if a := mx.AuthAttempts(); len(a) != 1 || !a[0].TLS || !a[0].OK {
			t.Fatalf("auth attempts %+v", a)
		}
		if authCount(m, "ok") != 1 || int(testutil.ToFloat64(m.tls.WithLabelValues(TLSPolicyRoute, "verified"))) != 1 {
			t.Fatal("not counted")
		}
	})
	t.Run("by host name", func(t *testing.T) {
		mx := fakemx.Start(t, secure)
		mx.RequireAuth("u", "p")
		cl, _ := smarthostClient(t, mx, ca, "", map[string]Credential{"smarthost.test": {"u", "p"}})
		if res := sendOne(t, cl); !res.OK() {
			t.Fatalf("want delivered: %+v", res)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		mx := fakemx.Start(t, secure)
		mx.RequireAuth("relay-user", "right")
		cl, m := smarthostClient(t, mx, ca, "", map[string]Credential{"remote.test": {"relay-user", "wrong"}})
		res := sendOne(t, cl)
		if !res.Temporary() || res.Status != "4.7.8" || !strings.Contains(res.Text, "535 5.7.8") ||
			!strings.Contains(res.Text, "relay-user") || strings.Contains(res.Text, "wrong") {
			t.Fatalf("want deferred 4.7.8 with the smarthost's 535 (and no password): %+v", res)
		}
		if len(mx.Transactions()) != 0 || authCount(m, "failed") != 1 {
			t.Fatal("a transaction began after a failed AUTH")
		}
	})
	t.Run("no STARTTLS: the password is never sent", func(t *testing.T) {
		mx := fakemx.Start(t, func(s *gosmtp.Server) { s.AllowInsecureAuth = true })
		mx.RequireAuth("relay-user", "pw")
		cl, m := smarthostClient(t, mx, ca, "", map[string]Credential{"remote.test": {"relay-user", "pw"}})
		res := sendOne(t, cl)
		if !res.Temporary() || res.Status != mail.StatusTLSFailed || !strings.Contains(res.Text, "does not offer STARTTLS") {
			t.Fatalf("want deferred 4.7.5: %+v", res)
		}
		if len(mx.AuthAttempts()) != 0 || int(testutil.ToFloat64(m.tls.WithLabelValues(TLSPolicyRoute, "failed"))) != 1 {
			t.Fatal("credentials went in plaintext")
		}
	})
	t.Run("tls=encrypt: a certificate nobody vouches for", func(t *testing.T) {
		mx := fakemx.Start(t, func(s *gosmtp.Server) { s.TLSConfig = testca.New(t, "self").ServerTLS(t, "whatever.test") })
		mx.RequireAuth("u", "p")
		cl, _ := smarthostClient(t, mx, ca, RouteTLSEncrypt, map[string]Credential{"remote.test": {"u", "p"}})
		if res := sendOne(t, cl); !res.OK() {
			t.Fatalf("want delivered: %+v", res)
		}
	})
	t.Run("credentials need a verified certificate unless tls=encrypt", func(t *testing.T) {
		mx := fakemx.Start(t, func(s *gosmtp.Server) { s.TLSConfig = testca.New(t, "self").ServerTLS(t, "smarthost.test") })
		mx.RequireAuth("u", "p")
		cl, _ := smarthostClient(t, mx, ca, "", map[string]Credential{"remote.test": {"u", "p"}})
		if res := sendOne(t, cl); !res.Temporary() || res.Status != mail.StatusTLSFailed || len(mx.AuthAttempts()) != 0 {
			t.Fatalf("want deferred 4.7.5 before AUTH: %+v", res)
		}
	})
	t.Run("the smarthost offers no AUTH", func(t *testing.T) {
		mx := fakemx.Start(t, secure)
		cl, m := smarthostClient(t, mx, ca, "", map[string]Credential{"remote.test": {"u", "p"}})
		if res := sendOne(t, cl); !res.OK() || authCount(m, "not-offered") != 1 {
			t.Fatalf("want delivered without AUTH: %+v", res)
		}
	})
}

// TestRouteRequireTLS: tls=require without credentials: verified TLS or
// nothing.
func TestRouteRequireTLS(t *testing.T) {
	ca := testca.New(t, "test CA")
	for name, tc := range map[string]struct {
		srv     *tls.Config
		deliver bool
		reason  string
	}{
		"verified":          {srv: ca.ServerTLS(t, "smarthost.test"), deliver: true},
		"another CA":        {srv: testca.New(t, "x").ServerTLS(t, "smarthost.test"), reason: "unknown authority"},
		"no STARTTLS":       {reason: "does not offer STARTTLS, and the route of remote.test requires verified TLS (tls=require)"},
		"another host name": {srv: ca.ServerTLS(t, "other.test"), reason: "not smarthost.test"},
	} {
		t.Run(name, func(t *testing.T) {
			mx := fakemx.Start(t, func(s *gosmtp.Server) { s.TLSConfig = tc.srv })
			cl, _ := smarthostClient(t, mx, ca, RouteTLSRequire, nil)
			res := sendOne(t, cl)
			if tc.deliver {
				if !res.OK() || !mx.Messages()[0].TLS {
					t.Fatalf("want delivered over TLS: %+v", res)
				}
				return
			}
			if !res.Temporary() || res.Status != mail.StatusTLSFailed || !strings.Contains(res.Text, tc.reason) || len(mx.Transactions()) != 0 {
				t.Fatalf("want deferred 4.7.5 (%s): %+v", tc.reason, res)
			}
		})
	}
}
