package node_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/dnstest"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/ststest"
	"github.com/homing-mail/homing/testkit/testca"
	"github.com/homing-mail/homing/testkit/tlog"
	"github.com/homing-mail/homing/testkit/wait"
)

// swappable is a server TLS configuration whose certificate a test
// changes while the server runs.
type swappable struct {
	cur atomic.Pointer[tls.Certificate]
}

func (s *swappable) set(c tls.Certificate) { s.cur.Store(&c) }
func (s *swappable) config() *tls.Config {
	return &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cur.Load(), nil }}
}

// stsNet is remote.test on loopback: MX hosts on one port (127.0.0.x),
// its MTA-STS record and policy host (HTTPS with a test CA's
// certificate), and the DNS zone naming them.
type stsNet struct {
	ca   *testca.CA
	dns  *dnstest.Server
	web  *ststest.Server
	port int
	mx   []string
}

func newSTSNet(t *testing.T, policy string) *stsNet {
	t.Helper()
	s := &stsNet{ca: testca.New(t, "test CA")}
	s.web = ststest.Start(t, s.ca.ServerTLS(t, "mta-sts.remote.test"))
	s.web.Serve("remote.test", policy)
	s.dns = dnstest.Start(t, dnstest.Zone{
		"mta-sts.remote.test":  {"A 127.0.0.1"},
		"_mta-sts.remote.test": {`TXT "v=STSv1; id=20261202T1"`},
	})
	return s
}

// addMX starts an MX host name at ip with TLS cfg, preference pref.
func (s *stsNet) addMX(t *testing.T, name, ip string, pref int, cfg *tls.Config) *fakemx.Server {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(s.port)))
	if err != nil {
		t.Fatal(err)
	}
	if s.port == 0 {
		_, p, _ := net.SplitHostPort(l.Addr().String())
		s.port, _ = strconv.Atoi(p)
	}
	mx := fakemx.Serve(l, func(srv *gosmtp.Server) { srv.TLSConfig = cfg })
	t.Cleanup(func() { mx.Close() })
	s.mx = append(s.mx, "MX "+strconv.Itoa(pref)+" "+name+".")
	if err := s.dns.Set("remote.test", s.mx...); err != nil {
		t.Fatal(err)
	}
	if err := s.dns.Set(name, "A "+ip); err != nil {
		t.Fatal(err)
	}
	return mx
}

// node is the node options that relay to remote.test through its MX
// hosts, trusting the test CA, fetching policies from the test's port.
func (s *stsNet) node(t *testing.T) testkit.NodeOption {
	caFile := s.ca.File(t)
	return testkit.WithConfig(func(c *node.Config) {
		c.Trust.DNS = s.dns.Addr()
		c.Trust.RelayCAFile = caFile
		c.Trust.TestMTASTSPort = s.web.Port
		c.Routing.TestMXPort = s.port
	})
}

func stsPolicyText(mode string, mx ...string) string {
	p := "version: STSv1\nmode: " + mode + "\n"
	for _, m := range mx {
		p += "mx: " + m + "\n"
	}
	return p + "max_age: 604800\n"
}

func sendToRemote(t *testing.T, n *node.Node) (*admin.Client, string) {
	t.Helper()
	cl := client(n)
	createAccount(t, cl, "alice@example.test", "relay-tls-pw-123", 0)
	id := submit(t, cl, "alice@example.test", "relay-tls-pw-123", []string{"bob@remote.test"},
		testkit.Message("alice@example.test", "bob@remote.test", "mta-sts", "x"))
	return cl, id
}

func journeyText(t *testing.T, cl *admin.Client, id string) string {
	t.Helper()
	evs, err := cl.Journey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Event + " " + e.Detail + "\n")
	}
	return b.String()
}

// TestMTASTSEnforceDefersABadCertificateThenDelivers: remote.test
// publishes an MTA-STS policy in mode enforce; its MX host presents a
// certificate the trust roots do not vouch for: the message waits in
// the queue with a 4.7.5 reason naming the policy, nothing reaches the
// host; once the host presents a good certificate the retry delivers
// over TLS. The policy is cached in the data directory, the outcomes are
// counted and in the journey.
func TestMTASTSEnforceDefersABadCertificateThenDelivers(t *testing.T) {
	sn := newSTSNet(t, stsPolicyText("enforce", "mx.remote.test"))
	var cert swappable
	cert.set(testca.New(t, "stranger").Leaf(t, "mx.remote.test"))
	mx := sn.addMX(t, "mx.remote.test", "127.0.0.1", 10, cert.config())
	dataDir := t.TempDir()
	n := testkit.StartNode(t, "n1", sn.node(t), testkit.WithConfig(func(c *node.Config) { c.Store.DataDir = dataDir }))
	cl, id := sendToRemote(t, n)
	var lastError string
	wait.For(t, 20*time.Second, func() bool {
		e, err := cl.QueueEntry(context.Background(), id)
		lastError = e.LastError
		return err == nil && strings.Contains(e.LastError, "4.7.5") && strings.Contains(e.LastError, "MTA-STS policy of remote.test (mode enforce")
	}, "the message is not deferred for the MTA-STS policy (last error %v)", wait.Lazy(func() string { return lastError }))
	if !strings.Contains(lastError, "certificate signed by unknown authority") {
		t.Errorf("the reason does not say what failed: %q", lastError)
	}
	for _, tx := range mx.Transactions() {
		if tx.DataSeen {
			t.Fatal("the message reached a host whose certificate fails the policy")
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "mta-sts-policies.json")); err != nil {
		t.Fatalf("the policy is not cached in the data directory: %v", err)
	}

	cert.set(sn.ca.Leaf(t, "mx.remote.test"))
	got := mx.WaitMessages(t, 1, 30*time.Second)[0]
	if !got.TLS {
		t.Fatal("delivered without TLS")
	}
	if sn.web.Requests("remote.test") != 1 {
		t.Errorf("the policy was fetched %d times, want once (then cached)", sn.web.Requests("remote.test"))
	}
	_, samples := scrape(t, n.AdminAddr())
	for _, prefix := range []string{`homing_outbound_tls_total{policy="mta-sts",result="failed"} `, `homing_outbound_tls_total{policy="mta-sts",result="verified"} `,
		`homing_mta_sts_fetches_total{result="ok"} `} {
		i := slices.IndexFunc(samples, func(s string) bool { return strings.HasPrefix(s, prefix) })
		if i < 0 || strings.HasSuffix(samples[i], " 0") {
			t.Errorf("no count of %s", prefix)
		}
	}
	wait.For(t, 10*time.Second, func() bool {
		j := journeyText(t, cl, id)
		return strings.Contains(j, "tls mx.remote.test [127.0.0.1:"+strconv.Itoa(sn.port)+"]: TLS") && strings.Contains(j, "certificate verified (the MTA-STS policy of remote.test (mode enforce")
	}, "the journey has no TLS outcome: %v", wait.Lazy(func() string { return journeyText(t, cl, id) }))
	t.Logf("journey:\n%s", journeyText(t, cl, id))
}

// TestMTASTSEnforceUsesOnlyListedMXHosts: of two MX hosts the one the
// policy does not list is never connected to, though it is preferred.
func TestMTASTSEnforceUsesOnlyListedMXHosts(t *testing.T) {
	sn := newSTSNet(t, stsPolicyText("enforce", "*.in.remote.test"))
	rogue := sn.addMX(t, "mx.remote.test", "127.0.0.1", 5, sn.ca.ServerTLS(t, "mx.remote.test"))
	good := sn.addMX(t, "a.in.remote.test", "127.0.0.2", 50, sn.ca.ServerTLS(t, "a.in.remote.test"))
	n := testkit.StartNode(t, "n1", sn.node(t))
	sendToRemote(t, n)
	good.WaitMessages(t, 1, 20*time.Second)
	if c := rogue.Connections(); c != 0 {
		t.Fatalf("the MX host outside the policy got %d connections", c)
	}
}

// TestMTASTSTestingDeliversAndLogs: in mode testing a certificate that
// does not verify does not stop the message; the node logs it.
func TestMTASTSTestingDeliversAndLogs(t *testing.T) {
	sn := newSTSNet(t, stsPolicyText("testing", "mx.remote.test"))
	mx := sn.addMX(t, "mx.remote.test", "127.0.0.1", 10, testca.New(t, "stranger").ServerTLS(t, "mx.remote.test"))
	var lines tlog.Lines
	n := testkit.StartNode(t, "n1", sn.node(t), testkit.WithConfig(func(c *node.Config) {
		c.Logger = tlog.New(t, "n1", tlog.KeepIn(&lines))
	}))
	sendToRemote(t, n)
	if got := mx.WaitMessages(t, 1, 20*time.Second)[0]; !got.TLS {
		t.Fatal("delivered without TLS")
	}
	lines.WaitCount(t, 1, 10*time.Second, "MTA-STS testing: the certificate of the MX host does not verify", "domain=remote.test")
}

// writeCredentials writes a route credentials file (mode 0600).
func writeCredentials(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestRouteCredentialsWrongThenReloaded: a route to a smarthost that
// requires AUTH: with a wrong password the message is deferred with the
// smarthost's 535 in the queue's reason (the password in no reason);
// after the file is fixed and reloaded (what SIGHUP does), the retry
// authenticates and delivers over verified TLS.
func TestRouteCredentialsWrongThenReloaded(t *testing.T) {
	ca := testca.New(t, "test CA")
	mx := fakemx.Start(t, func(s *gosmtp.Server) { s.TLSConfig = ca.ServerTLS(t, "smarthost.test") })
	mx.RequireAuth("relay@example.test", "the right one")
	_, port, _ := net.SplitHostPort(mx.Addr)
	dns := dnstest.Start(t, dnstest.Zone{"smarthost.test": {"A 127.0.0.1"}})
	creds := filepath.Join(t.TempDir(), "route-credentials")
	writeCredentials(t, creds, "# the smarthost\n* relay@example.test a wrong one\n")
	caFile := ca.File(t)
	n := testkit.StartNode(t, "n1", withDNS(dns), testkit.WithConfig(func(c *node.Config) {
		c.Routing.Routes["*"] = "smarthost.test:" + port
		c.Routing.RouteCredentials = creds
		c.Trust.RelayCAFile = caFile
	}))
	cl, id := sendToRemote(t, n)
	var lastError string
	wait.For(t, 20*time.Second, func() bool {
		e, err := cl.QueueEntry(context.Background(), id)
		lastError = e.LastError
		return err == nil && strings.Contains(e.LastError, "535 5.7.8")
	}, "the message is not deferred for the smarthost's 535 (last error %v)", wait.Lazy(func() string { return lastError }))
	if !strings.Contains(lastError, "4.7.8") || !strings.Contains(lastError, "relay@example.test") || strings.Contains(lastError, "wrong one") {
		t.Errorf("the reason: %q", lastError)
	}
	if a := mx.AuthAttempts(); len(a) == 0 || !a[0].TLS || a[0].OK {
		t.Fatalf("auth attempts %+v", a)
	}

	writeCredentials(t, creds, "* relay@example.test the right one\n")
	if err := n.ReloadRouteCredentials(); err != nil {
		t.Fatal(err)
	}
	got := mx.WaitMessages(t, 1, 30*time.Second)[0]
	if got.AuthUser != "relay@example.test" || !got.TLS {
		t.Fatalf("delivered as %q, TLS %v", got.AuthUser, got.TLS)
	}
}

// TestRouteCredentialsNeverInPlaintext: a smarthost that offers AUTH but
// no STARTTLS gets neither the password nor the message: 4.7.5 in the
// queue.
func TestRouteCredentialsNeverInPlaintext(t *testing.T) {
	mx := fakemx.Start(t, func(s *gosmtp.Server) { s.AllowInsecureAuth = true })
	mx.RequireAuth("u", "p")
	creds := filepath.Join(t.TempDir(), "route-credentials")
	writeCredentials(t, creds, mx.Addr+" u p\n")
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr), testkit.WithConfig(func(c *node.Config) {
		c.Routing.RouteCredentials = creds
	}))
	cl, id := sendToRemote(t, n)
	wait.For(t, 20*time.Second, func() bool {
		e, err := cl.QueueEntry(context.Background(), id)
		return err == nil && strings.Contains(e.LastError, "4.7.5") && strings.Contains(e.LastError, "does not offer STARTTLS")
	}, "the message is not deferred for the missing STARTTLS")
	if len(mx.AuthAttempts()) != 0 || len(mx.Transactions()) != 0 {
		t.Fatal("the credentials or the message went in plaintext")
	}
}

// TestRouteCredentialsFileMode: a credentials file group or others can
// read stops the start, saying why.
func TestRouteCredentialsFileMode(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "route-credentials")
	if err := os.WriteFile(creds, []byte("* u p\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(creds, 0o640); err != nil {
		t.Fatal(err)
	}
	cfg := testkit.TestConfig(t, "n1")
	cfg.Routing.Routes["*"] = "127.0.0.1:25"
	cfg.Routing.RouteCredentials = creds
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err == nil {
		n.Close()
		t.Fatal("the node started with a credentials file others can read")
	}
	if !strings.Contains(err.Error(), "mode 0640") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("the error does not say why: %v", err)
	}
}

// TestRouteCredentialsReloadedOnSIGHUP: a real homing serve reads
// --route-credentials again on SIGHUP: the smarthost refuses the first
// password, the fixed file is read after the signal, and the retry
// delivers authenticated (a route with tls=encrypt: the smarthost's
// self-signed certificate is not checked).
func TestRouteCredentialsReloadedOnSIGHUP(t *testing.T) {
	mx := fakemx.Start(t, func(s *gosmtp.Server) { s.TLSConfig = testca.New(t, "self").ServerTLS(t, "smarthost.test") })
	mx.RequireAuth("relay", "new-password")
	creds := filepath.Join(t.TempDir(), "route-credentials")
	writeCredentials(t, creds, "remote.test relay old-password\n")
	p := testkit.StartProcess(t, homingBin, "n1", "--route", "remote.test="+mx.Addr+",tls=encrypt",
		"--route-credentials", creds, "--retry-min", "200ms", "--retry-max", "1s")
	cl := adminClient(p.Admin)
	if _, err := cl.CreateAccount(t.Context(), adminAccount("alice@example.test", "relay-tls-pw-123")); err != nil {
		t.Fatal(err)
	}
	submit(t, cl, "alice@example.test", "relay-tls-pw-123", []string{"bob@remote.test"},
		testkit.Message("alice@example.test", "bob@remote.test", "reload", "x"))
	wait.For(t, 20*time.Second, func() bool { return len(mx.AuthAttempts()) > 0 }, "no AUTH at the smarthost")
	if a := mx.AuthAttempts()[0]; a.OK || a.Password != "old-password" || !a.TLS {
		t.Fatalf("first attempt %+v", a)
	}

	writeCredentials(t, creds, "remote.test relay new-password\n")
	p.Signal(syscall.SIGHUP)
	if got := mx.WaitMessages(t, 1, 30*time.Second)[0]; got.AuthUser != "relay" {
		t.Fatalf("delivered as %q", got.AuthUser)
	}
	wait.For(t, 10*time.Second, func() bool { return strings.Contains(p.Log(), "route credentials reloaded") },
		"no log line about the reload")
}
