package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	stdmail "net/mail"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// The cluster tests run every node as a real process (testkit's Processes
// runner): protoactor's remote writes a global logger at start (a data race
// under -race when several nodes share one process), and kill -9 needs a
// process anyway.

// newCluster makes an empty cluster of `homing serve` processes sharing one
// account store (a dynamic cluster) with 8 partitions; when the test fails,
// every node's log tail goes to the test log.
func newCluster(t *testing.T) *testkit.Cluster {
	return testkit.NewCluster(t, testkit.ClusterOptions{Runner: testkit.Processes, Binary: homingBin, Partitions: 8})
}

// sender streams messages to a frontend over several sessions and records
// which ones got 250.
type sender struct {
	mu    sync.Mutex
	acked map[string]string // Message-ID -> account
	fails atomic.Int64
	errs  []string // the first maxSenderErrs failures, for the log
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
						s.failed(err)
						continue
					}
					if err := cl.Hello("load.test"); err != nil {
						s.failed(err)
						cl.Close()
						cl = nil
						continue
					}
				}
				acct := accounts[(k+i)%len(accounts)]
				mid := fmt.Sprintf("<c%d-%d@load.test>", k, i)
				msg := []byte(fmt.Sprintf("From: <load@load.test>\r\nTo: <%s>\r\nMessage-ID: %s\r\nSubject: n%d\r\n\r\nbody %d\r\n", acct, mid, i, i))
				if err := sendOn(cl, acct, msg); err != nil {
					s.failed(err)
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

// maxSenderErrs bounds the failures a sender keeps for the log.
const maxSenderErrs = 20

func (s *sender) failed(err error) {
	s.fails.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) < maxSenderErrs {
		s.errs = append(s.errs, err.Error())
	}
}

// failures returns the first failures seen.
func (s *sender) failures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

func (s *sender) waitCount(t *testing.T, n int64) {
	t.Helper()
	wait.For(t, 30*time.Second, func() bool { return s.n.Load() >= n }, "only %d messages acknowledged, want %d", s.n.Load(), n)
}

func (s *sender) finish() map[string]string {
	close(s.stop)
	s.wg.Wait()
	return s.acked
}

// queueDigest describes the first entries of c's queue for a failure
// message.
func queueDigest(c *admin.Client) string {
	q, err := c.Queue(context.Background())
	if err != nil {
		return err.Error()
	}
	out := fmt.Sprintf("%d entries", len(q))
	for i, e := range q {
		if i == 5 {
			break
		}
		out += fmt.Sprintf("; %s %s attempts=%d next=%v err=%q", e.ID, e.State, e.Attempts, e.NextAttempt, e.LastError)
	}
	return out
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
		wait.For(t, 60*time.Second, func() bool {
			var err error
			ms, err = c.Messages(context.Background(), acct)
			return err == nil && len(ms) >= n
		}, "%s has %v messages, want at least %d; the frontend's queue: %v", acct, wait.Lazy(func() string { return fmt.Sprint(len(ms)) }), n,
			wait.Lazy(func() string { return queueDigest(c) }))
		for _, m := range ms {
			raw, err := c.RawMessage(context.Background(), acct, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := stdmail.ReadMessage(bytes.NewReader(raw))
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
		wait.For(t, 20*time.Second, func() bool {
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
	c := newCluster(t)
	c.Add("fe", mail.RoleFrontend)
	c.Add("be1", mail.RoleBackend)
	c.Add("be2", mail.RoleBackend)
	c.Add("be3", mail.RoleBackend)
	c.WaitOwners(t, "be1", "be2", "be3")
	view, err := c.Admin("fe").Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range view.Members {
		if m.State != "alive" {
			t.Errorf("member %s is %s", m.Name, m.State)
		}
	}
	fe := c.Admin("fe")
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

	s := startSender(t, c.SMTPAddr("fe"), accounts, 4)
	s.waitCount(t, 100)
	c.Add("be4", mail.RoleBackend)
	c.WaitOwners(t, "be1", "be2", "be3", "be4")
	s.waitCount(t, 300)
	c.Stop("be2") // graceful: leaves the cluster
	wait.For(t, 20*time.Second, func() bool {
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
	c.WaitOwners(t, "be1", "be3", "be4")
	s.waitCount(t, 500)
	acked := s.finish()
	verifyExactlyOnce(t, fe, acked)
}

// TestClusterKillBackendUnderLoad: kill -9 of a backend while mail flows;
// its partitions are served by the others within seconds (dynamic mode),
// and nothing that got 250 is lost or stored twice.
func TestClusterKillBackendUnderLoad(t *testing.T) {
	c := newCluster(t)
	c.Add("fe", mail.RoleFrontend)
	c.Add("be1", mail.RoleBackend)
	c.Add("be2", mail.RoleBackend)
	c.WaitOwners(t, "be1", "be2")
	fe := c.Admin("fe")
	accounts := makeAccounts(t, fe, 12)
	s := startSender(t, c.SMTPAddr("fe"), accounts, 4)
	s.waitCount(t, 150)
	killed := time.Now()
	c.Kill("be1")
	c.WaitOwners(t, "be2")
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
	c := newCluster(t)
	c.Add("fe", mail.RoleFrontend)
	c.Add("be1", mail.RoleBackend)
	c.WaitOwners(t, "be1")
	fe := c.Admin("fe")
	accounts := makeAccounts(t, fe, 4)
	for _, a := range accounts { // the frontend learns these addresses
		if _, err := testkit.Send(c.SMTPAddr("fe"), "x@remote.test", []string{a},
			testkit.Message("x@remote.test", a, "before", "before the cut")); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range accounts {
		waitMessages(t, fe, a, 1)
	}
	// Stored is not yet dequeued: the frontend deletes a message once the
	// answer has come back and the delete is durable.
	wait.For(t, 20*time.Second, func() bool {
		q, err := fe.Queue(context.Background())
		return err == nil && len(q) == 0
	}, "the frontend queue still holds the messages delivered before the cut")

	c.Signal("be1", syscall.SIGSTOP)
	defer c.Signal("be1", syscall.SIGCONT)
	wait.For(t, 20*time.Second, func() bool {
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
		if _, err := testkit.Send(c.SMTPAddr("fe"), "x@remote.test", []string{a},
			testkit.Message("x@remote.test", a, fmt.Sprintf("cut %d", i), "waiting")); err != nil {
			t.Fatalf("sending to known account %s while cut off: %v", a, err)
		}
	}
	_, err := testkit.Send(c.SMTPAddr("fe"), "x@remote.test", []string{"never-seen@example.test"},
		testkit.Message("x@remote.test", "never-seen@example.test", "?", "?"))
	assertSMTPCode(t, err, 451, "4.4.3")
	q, err := fe.Queue(context.Background())
	if err != nil || len(q) != len(accounts) {
		t.Fatalf("frontend queue holds %d messages (err %v), want %d waiting: %+v", len(q), err, len(accounts), q)
	}

	c.Signal("be1", syscall.SIGCONT)
	for _, a := range accounts {
		waitMessages(t, fe, a, 2)
	}
	wait.For(t, 30*time.Second, func() bool {
		q, err := fe.Queue(context.Background())
		return err == nil && len(q) == 0
	}, "frontend queue not drained after heal")
}

// TestClusterTwoOwnersFence: two backends both configured to own every
// partition (a static cluster misconfigured) share one account store. The
// placement gives every partition to s1, which came first (s2 shows the
// conflict and opens none), and Homing's lock file fences every other
// open: this test process, a third would-be owner, is refused each
// partition with ErrLocked naming s1 as the holder. When s1 is killed, s2
// (which has the data too: the store is shared) takes over with a newer
// epoch; no acknowledged message is lost or stored twice.
func TestClusterTwoOwnersFence(t *testing.T) {
	c := newCluster(t)
	c.Add("fe", mail.RoleFrontend)
	c.Add("s1", mail.RoleBackend, "--static-partitions", "0-7")
	c.WaitOwners(t, "s1")
	c.Add("s2", mail.RoleBackend, "--static-partitions", "0-7")
	fe := c.Admin("fe")
	wait.For(t, 20*time.Second, func() bool {
		cl, err := c.Admin("s2").Cluster(context.Background())
		return err == nil && len(cl.Conflicts) == 8 && cl.Conflicts[0].Owner == "s1"
	}, "s2 does not see the conflict on its 8 partitions")
	if ps, err := c.Admin("s2").Partitions(context.Background()); err != nil || len(ps) != 0 {
		t.Fatalf("s2 runs partitions %+v (%v) while s1 owns them", ps, err)
	}
	s1Parts, err := c.Admin("s1").Partitions(context.Background())
	if err != nil || len(s1Parts) != 8 {
		t.Fatalf("s1 partitions %+v, %v", s1Parts, err)
	}
	store, err := storage.NewAccountStore(c.AccountStore(), 8, storage.Options{Owner: "intruder"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for p := range 8 {
		part, err := store.Open(p)
		if err == nil {
			part.Close()
			t.Fatalf("partition %d opened here while s1 holds it: the fence failed", p)
		}
		if !errors.Is(err, storage.ErrLocked) || errors.Is(err, storage.ErrLockFailed) || !strings.Contains(err.Error(), "owner=s1 ") {
			t.Fatalf("partition %d: %v, want ErrLocked held by owner=s1", p, err)
		}
	}
	accounts := makeAccounts(t, c.Admin("s1"), 8)
	s := startSender(t, c.SMTPAddr("fe"), accounts, 3)
	s.waitCount(t, 100)
	killed := time.Now()
	c.Kill("s1")
	// s2 gets the locks once s1 is gone and serves everything.
	wait.For(t, 30*time.Second, func() bool {
		ps, err := c.Admin("s2").Partitions(context.Background())
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
	s2Parts, err := c.Admin("s2").Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range s2Parts {
		if p.Epoch <= s1Parts[i].Epoch {
			t.Errorf("partition %d: s2 opened it with epoch %d, not above s1's %d", p.ID, p.Epoch, s1Parts[i].Epoch)
		}
	}
	s.waitCount(t, s.n.Load()+100)
	t.Logf("100 more messages acknowledged %v after the kill", time.Since(killed).Round(10*time.Millisecond))
	acked := s.finish()
	verifyExactlyOnce(t, fe, acked)
}
