package node_test

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
)

// The cluster tests run every node as a real process: protoactor's remote
// writes a global logger at start (a data race under -race when several
// nodes share one process), and kill -9 needs a process anyway.

const testSecret = "cluster-test-secret-0123456789"

// testCluster is a set of `homing serve` processes sharing one account
// store (a dynamic cluster).
type testCluster struct {
	t      *testing.T
	store  string
	seed   string
	nodes  map[string]*testkit.Process
	gossip map[string]string
}

// newTestCluster makes an empty cluster; when the test fails (t.Fatal
// included), every node's log tail is written to the test log.
func newTestCluster(t *testing.T) *testCluster {
	c := &testCluster{t: t, store: t.TempDir(), nodes: map[string]*testkit.Process{}, gossip: map[string]string{}}
	t.Cleanup(func() {
		if t.Failed() {
			for name, p := range c.nodes {
				t.Logf("--- %s log:\n%s", name, tail(p.Log(), 80))
			}
		}
	})
	return c
}

// add starts a node with the given role and extra flags.
func (c *testCluster) add(name, role string, extra ...string) *testkit.Process {
	c.t.Helper()
	g := testkit.FreeAddr(c.t)
	args := []string{"--roles", role, "--gossip", g, "--cluster-addr", testkit.FreeAddr(c.t),
		"--secret", testSecret, "--gossip-fast", "--partitions", "8", "--account-store", c.store,
		"--demo=false", "--log-level", "info", "--retry-min", "200ms", "--retry-max", "1s", "--local-retry", "300ms"}
	if c.seed != "" {
		args = append(args, "--join", c.seed)
	} else {
		c.seed = g
	}
	p := testkit.StartProcess(c.t, homingBin, name, append(args, extra...)...)
	c.nodes[name], c.gossip[name] = p, g
	return p
}

func (c *testCluster) admin(name string) *admin.Client {
	return admin.NewClient("http://"+c.nodes[name].Admin, "")
}

// waitOwners waits until, as seen from node `from`, every partition is
// owned by one of owners and each of owners holds at least one, and until
// each owner has opened what it owns.
func (c *testCluster) waitOwners(from string, owners ...string) admin.Cluster {
	c.t.Helper()
	var view admin.Cluster
	testkit.Eventually(c.t, 30*time.Second, func() bool {
		var err error
		view, err = c.admin(from).Cluster(context.Background())
		if err != nil || len(view.Partitions) == 0 {
			return false
		}
		held := map[string]int{}
		for _, p := range view.Partitions {
			if !contains(owners, p.Owner) {
				return false
			}
			held[p.Owner]++
		}
		for _, o := range owners {
			if held[o] == 0 {
				return false
			}
			ps, err := c.admin(o).Partitions(context.Background())
			if err != nil || len(ps) != held[o] {
				return false
			}
			for _, p := range ps {
				if !p.Open {
					return false
				}
			}
		}
		return true
	}, "partitions not owned and open by %v; view from %s: %+v", owners, from, view.Partitions)
	return view
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// sender streams messages to a frontend over several sessions and records
// which ones got 250.
type sender struct {
	mu    sync.Mutex
	acked map[string]string // Message-ID -> account
	fails atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
	n     atomic.Int64
}

func startSender(t *testing.T, smtpAddr string, accounts []string, sessions int) *sender {
	s := &sender{acked: map[string]string{}, stop: make(chan struct{})}
	for k := 0; k < sessions; k++ {
		s.wg.Add(1)
		go func(k int) {
			defer s.wg.Done()
			var cl *gosmtp.Client
			for i := 0; ; i++ {
				select {
				case <-s.stop:
					if cl != nil {
						cl.Close()
					}
					return
				default:
				}
				if cl == nil {
					var err error
					if cl, err = gosmtp.Dial(smtpAddr); err != nil {
						s.fails.Add(1)
						continue
					}
					if err := cl.Hello("load.test"); err != nil {
						cl.Close()
						cl = nil
						continue
					}
				}
				acct := accounts[(k+i)%len(accounts)]
				mid := fmt.Sprintf("<c%d-%d@load.test>", k, i)
				msg := []byte(fmt.Sprintf("From: <load@load.test>\r\nTo: <%s>\r\nMessage-ID: %s\r\nSubject: n%d\r\n\r\nbody %d\r\n", acct, mid, i, i))
				if err := sendOn(cl, acct, msg); err != nil {
					s.fails.Add(1)
					_ = cl.Reset()
					continue
				}
				s.mu.Lock()
				s.acked[mid] = acct
				s.mu.Unlock()
				s.n.Add(1)
			}
		}(k)
	}
	return s
}

func (s *sender) waitCount(t *testing.T, n int64) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, func() bool { return s.n.Load() >= n }, "only %d messages acknowledged, want %d", s.n.Load(), n)
}

func (s *sender) finish() map[string]string {
	close(s.stop)
	s.wg.Wait()
	return s.acked
}

// verifyExactlyOnce waits until every acknowledged message is stored and
// checks none is stored twice, reading mailboxes through node `via`.
func verifyExactlyOnce(t *testing.T, c *admin.Client, acked map[string]string) {
	t.Helper()
	want := map[string]int{}
	for _, acct := range acked {
		want[acct]++
	}
	seen := map[string]int{}
	accts := make([]string, 0, len(want))
	for a := range want {
		accts = append(accts, a)
	}
	sort.Strings(accts)
	for _, acct := range accts {
		n := want[acct]
		var ms []admin.Message
		testkit.Eventually(t, 60*time.Second, func() bool {
			var err error
			ms, err = c.Messages(context.Background(), acct)
			return err == nil && len(ms) >= n
		}, "%s has %d messages, want at least %d", acct, len(ms), n)
		for _, m := range ms {
			raw, err := c.RawMessage(context.Background(), acct, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("stored message does not parse: %v", err)
			}
			seen[msg.Header.Get("Message-ID")]++
		}
	}
	for mid := range acked {
		if seen[mid] != 1 {
			t.Errorf("acknowledged message %s stored %d times, want exactly once", mid, seen[mid])
		}
	}
	for mid, k := range seen {
		if k > 1 {
			t.Errorf("message %s stored %d times", mid, k)
		}
	}
}

func makeAccounts(t *testing.T, c *admin.Client, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		a := fmt.Sprintf("user%d@example.test", i)
		testkit.Eventually(t, 20*time.Second, func() bool {
			_, err := c.CreateAccount(context.Background(), admin.CreateAccount{Address: a, Password: "cluster-pw-1"})
			return err == nil || strings.Contains(err.Error(), "exists")
		}, "creating %s", a)
		out = append(out, a)
	}
	return out
}

// TestClusterMailFlowsThroughFrontendToBackends: one frontend, three
// backends; mail sent to the frontend lands in accounts on every backend,
// and keeps flowing while a fourth backend joins (partitions move) and one
// leaves gracefully.
func TestClusterMailFlowsThroughFrontendToBackends(t *testing.T) {
	c := newTestCluster(t)
	c.add("fe", "frontend")
	c.add("be1", "backend")
	c.add("be2", "backend")
	c.add("be3", "backend")
	view := c.waitOwners("fe", "be1", "be2", "be3")
	for _, m := range view.Members {
		if m.State != "alive" {
			t.Errorf("member %s is %s", m.Name, m.State)
		}
	}
	fe := c.admin("fe")
	accounts := makeAccounts(t, fe, 16)
	// The accounts live on all three backends.
	onBackend := map[string]bool{}
	for _, a := range accounts {
		acct, err := fe.Account(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		onBackend[acct.Owner] = true
	}
	if len(onBackend) != 3 {
		t.Fatalf("16 accounts are on backends %v, want all three", onBackend)
	}
	// The frontend never opens accounts.
	if ps, err := fe.Partitions(context.Background()); err != nil || len(ps) != 0 {
		t.Fatalf("frontend runs partitions %v (err %v)", ps, err)
	}

	s := startSender(t, c.nodes["fe"].SMTP, accounts, 4)
	s.waitCount(t, 100)
	c.add("be4", "backend")
	c.waitOwners("fe", "be1", "be2", "be3", "be4")
	s.waitCount(t, 300)
	c.nodes["be2"].Stop() // graceful: leaves the cluster
	testkit.Eventually(t, 20*time.Second, func() bool {
		v, err := fe.Cluster(context.Background())
		if err != nil {
			return false
		}
		for _, m := range v.Members {
			if m.Name == "be2" {
				return m.State == "left"
			}
		}
		return false
	}, "be2 not seen as left")
	c.waitOwners("fe", "be1", "be3", "be4")
	s.waitCount(t, 500)
	acked := s.finish()
	verifyExactlyOnce(t, fe, acked)
}

// TestClusterKillBackendUnderLoad: kill -9 of a backend while mail flows;
// its partitions are served by the others within seconds (dynamic mode),
// and nothing that got 250 is lost or stored twice.
func TestClusterKillBackendUnderLoad(t *testing.T) {
	c := newTestCluster(t)
	c.add("fe", "frontend")
	c.add("be1", "backend")
	c.add("be2", "backend")
	c.waitOwners("fe", "be1", "be2")
	fe := c.admin("fe")
	accounts := makeAccounts(t, fe, 12)
	s := startSender(t, c.nodes["fe"].SMTP, accounts, 4)
	s.waitCount(t, 150)
	killed := time.Now()
	c.nodes["be1"].Kill()
	c.waitOwners("fe", "be2")
	t.Logf("be1's partitions open on be2 %v after kill -9", time.Since(killed).Round(10*time.Millisecond))
	s.waitCount(t, s.n.Load()+150)
	acked := s.finish()
	verifyExactlyOnce(t, fe, acked)
}

// TestClusterFrontendCutOffWaitsInQueue: while no backend answers (the only
// one is frozen with SIGSTOP: gossip declares it dead, its locks stay
// held), mail for accounts the frontend has seen is accepted, waits in the
// frontend's queue, and is delivered once the backend answers again. An
// address never seen gets 451 4.4.3, never a rejection.
func TestClusterFrontendCutOffWaitsInQueue(t *testing.T) {
	c := newTestCluster(t)
	c.add("fe", "frontend")
	c.add("be1", "backend")
	c.waitOwners("fe", "be1")
	fe := c.admin("fe")
	accounts := makeAccounts(t, fe, 4)
	for _, a := range accounts { // the frontend learns these addresses
		if _, err := testkit.Send(c.nodes["fe"].SMTP, "x@remote.test", []string{a},
			testkit.Message("x@remote.test", a, "before", "before the cut")); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range accounts {
		waitMessages(t, fe, a, 1)
	}

	be := c.nodes["be1"]
	be.Signal(syscall.SIGSTOP)
	defer be.Signal(syscall.SIGCONT)
	testkit.Eventually(t, 20*time.Second, func() bool {
		v, err := fe.Cluster(context.Background())
		if err != nil {
			return false
		}
		for _, m := range v.Members {
			if m.Name == "be1" {
				return m.State == "dead"
			}
		}
		return false
	}, "frozen backend not declared dead")
	for i, a := range accounts {
		if _, err := testkit.Send(c.nodes["fe"].SMTP, "x@remote.test", []string{a},
			testkit.Message("x@remote.test", a, fmt.Sprintf("cut %d", i), "waiting")); err != nil {
			t.Fatalf("sending to known account %s while cut off: %v", a, err)
		}
	}
	_, err := testkit.Send(c.nodes["fe"].SMTP, "x@remote.test", []string{"never-seen@example.test"},
		testkit.Message("x@remote.test", "never-seen@example.test", "?", "?"))
	assertSMTPCode(t, err, 451, "4.4.3")
	q, err := fe.Queue(context.Background())
	if err != nil || len(q) != len(accounts) {
		t.Fatalf("frontend queue holds %d messages (err %v), want %d waiting", len(q), err, len(accounts))
	}

	be.Signal(syscall.SIGCONT)
	for _, a := range accounts {
		waitMessages(t, fe, a, 2)
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		q, err := fe.Queue(context.Background())
		return err == nil && len(q) == 0
	}, "frontend queue not drained after heal")
}

// TestClusterTwoOwnersFence: two backends both configured to own every
// partition (a static cluster misconfigured, or two views that disagree)
// share one account store. The storage fence lets exactly one open each
// partition; when it is killed, the other takes over; no acknowledged
// message is lost or stored twice.
func TestClusterTwoOwnersFence(t *testing.T) {
	c := newTestCluster(t)
	c.add("fe", "frontend")
	c.add("s1", "backend", "--static-partitions", "0-7")
	c.waitOwners("fe", "s1")
	c.add("s2", "backend", "--static-partitions", "0-7")
	fe := c.admin("fe")
	// s2 believes it owns all 8 partitions but opens none: s1 holds them.
	testkit.Eventually(t, 20*time.Second, func() bool {
		ps, err := c.admin("s2").Partitions(context.Background())
		return err == nil && len(ps) == 8
	}, "s2 does not run its 8 partitions")
	ps, _ := c.admin("s2").Partitions(context.Background())
	for _, p := range ps {
		if p.Open {
			t.Fatalf("s2 opened partition %d while s1 holds it: the fence failed", p.ID)
		}
	}
	accounts := makeAccounts(t, c.admin("s1"), 8)
	s := startSender(t, c.nodes["fe"].SMTP, accounts, 3)
	s.waitCount(t, 100)
	killed := time.Now()
	c.nodes["s1"].Kill()
	// s2 gets the locks once s1 is gone and serves everything.
	testkit.Eventually(t, 30*time.Second, func() bool {
		ps, err := c.admin("s2").Partitions(context.Background())
		if err != nil || len(ps) != 8 {
			return false
		}
		for _, p := range ps {
			if !p.Open {
				return false
			}
		}
		return true
	}, "s2 did not open the partitions after s1 was killed")
	t.Logf("s2 opened every partition %v after s1 was killed", time.Since(killed).Round(10*time.Millisecond))
	s.waitCount(t, s.n.Load()+100)
	t.Logf("100 more messages acknowledged %v after the kill", time.Since(killed).Round(10*time.Millisecond))
	acked := s.finish()
	verifyExactlyOnce(t, fe, acked)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
