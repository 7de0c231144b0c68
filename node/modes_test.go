package node_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/wait"
)

// modeCluster starts frontends (relaying remote.test to mx) and one
// backend be1 in queue mode Remotely that forwards non-local mail to the
// frontends, and creates alice on it.
func modeCluster(t *testing.T, mx *fakemx.Server, feModes ...string) (*testkit.Cluster, *admin.Client) {
	t.Helper()
	c := newCluster(t)
	for i, m := range feModes {
		c.Add([]string{"fe1", "fe2", "fe3"}[i], mail.RoleFrontend, "--queue-mode", m, "--route", "remote.test="+mx.Addr)
	}
	c.Add("be1", mail.RoleBackend, "--queue-mode", "remotely", "--forward-to", "*")
	c.WaitOwners(t, "be1")
	be := c.Admin("be1")
	wait.For(t, 20*time.Second, func() bool {
		_, err := be.CreateAccount(context.Background(), admin.CreateAccount{Address: "alice@example.test", Password: "pw-for-tests-123"})
		return err == nil || strings.Contains(err.Error(), "exists")
	}, "creating alice")
	return c, be
}

func stats(t *testing.T, c *admin.Client) admin.Stats {
	t.Helper()
	s, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRemotelyTransfersToLocallyForOthers: mail generated on a backend in
// mode Remotely is handed to the Locally-for-Others frontend with its
// envelope and relayed from there; the backend's queue keeps nothing.
func TestRemotelyTransfersToLocallyForOthers(t *testing.T) {
	mx := fakemx.Start(t)
	_, be := modeCluster(t, mx, "locally-for-others")
	raw := testkit.Message("alice@example.test", "bob@remote.test", "remotely", "generated on a backend")
	id, err := be.Submit(context.Background(), "alice@example.test", "pw-for-tests-123", []string{"bob@remote.test"}, raw)
	if err != nil {
		t.Fatal(err)
	}
	got := mx.WaitMessages(t, 1, 30*time.Second)
	if got[0].From != "alice@example.test" || len(got[0].To) != 1 || got[0].To[0] != "bob@remote.test" {
		t.Fatalf("MX got from %q to %v", got[0].From, got[0].To)
	}
	if !bytes.HasSuffix(got[0].Data, raw) || bytes.Contains(got[0].Data, []byte("X-Homing-Envelope")) {
		t.Fatalf("relayed message is not the submitted one, or carries the envelope record:\n%s", got[0].Data)
	}
	// It went through fe1's queue with the same id (its Received line names it).
	if !bytes.Contains(got[0].Data, []byte("by fe1 ")) || !bytes.Contains(got[0].Data, []byte(id)) {
		t.Fatalf("relayed message did not pass fe1 under id %s:\n%s", id, got[0].Data)
	}
	wait.For(t, 10*time.Second, func() bool { return stats(t, be).Transferred == 1 }, "be1 counted %d transfers", stats(t, be).Transferred)
	if q, err := be.Queue(context.Background()); err != nil || len(q) != 0 {
		t.Fatalf("be1's queue holds %d messages after the transfer (err %v)", len(q), err)
	}
	if n := len(mx.Messages()); n != 1 {
		t.Fatalf("MX got %d copies", n)
	}
}

// TestRemotelyFallsBackWhenNoMemberTakesIt: with no Locally-for-Others
// member, the backend processes the message itself (here: forwards it to
// a frontend, which relays it).
func TestRemotelyFallsBackWhenNoMemberTakesIt(t *testing.T) {
	mx := fakemx.Start(t)
	c, be := modeCluster(t, mx, "locally")
	_ = c
	raw := testkit.Message("alice@example.test", "bob@remote.test", "fallback", "no taker")
	if _, err := be.Submit(context.Background(), "alice@example.test", "pw-for-tests-123", []string{"bob@remote.test"}, raw); err != nil {
		t.Fatal(err)
	}
	got := mx.WaitMessages(t, 1, 30*time.Second)
	if !bytes.HasSuffix(got[0].Data, raw) {
		t.Fatalf("MX got %q", got[0].Data)
	}
	var s admin.Stats
	wait.For(t, 10*time.Second, func() bool { s = stats(t, be); return s.Relayed == 1 },
		"be1 relayed %d; want 1 (processed in its own queue)", s.Relayed)
	if s.Transferred != 0 {
		t.Fatalf("be1 transferred %d, want 0", s.Transferred)
	}
	if n := len(mx.Messages()); n != 1 {
		t.Fatalf("MX got %d copies", n)
	}
}

// TestRemotelyLocallyForOthersMemberKilled: the Locally-for-Others member
// dies; the backend's next message falls back to its own queue and is
// forwarded to the other frontend, exactly once.
func TestRemotelyLocallyForOthersMemberKilled(t *testing.T) {
	mx := fakemx.Start(t)
	c, be := modeCluster(t, mx, "locally-for-others", "locally")
	c.Kill("fe1")
	raw := testkit.Message("alice@example.test", "bob@remote.test", "after kill", "the taker is gone")
	if _, err := be.Submit(context.Background(), "alice@example.test", "pw-for-tests-123", []string{"bob@remote.test"}, raw); err != nil {
		t.Fatal(err)
	}
	got := mx.WaitMessages(t, 1, 60*time.Second)
	if !bytes.HasSuffix(got[0].Data, raw) || !bytes.Contains(got[0].Data, []byte("by fe2 ")) {
		t.Fatalf("MX got, not through fe2:\n%s", got[0].Data)
	}
	wait.For(t, 10*time.Second, func() bool {
		q, err := be.Queue(context.Background())
		return err == nil && len(q) == 0
	}, "be1's queue not empty")
	if n := len(mx.Messages()); n != 1 {
		t.Fatalf("MX got %d copies, want exactly one", n)
	}
}

// TestRemotelyRunsClusterFilterOnce shows the point of remote queue
// processing (design.md, mail flow 5): a message generated on a backend
// that forwards to '*' passes the cluster-wide filter twice in mode
// Locally (the backend's Enqueuer, then the frontend's), and once in mode
// Remotely (only the Locally-for-Others frontend's Enqueuer).
func TestRemotelyRunsClusterFilterOnce(t *testing.T) {
	mx := fakemx.Start(t)
	c := newCluster(t)
	c.Add("fe1", mail.RoleFrontend, "--queue-mode", "locally-for-others", "--route", "remote.test="+mx.Addr, "--filter", "cf="+filterBin)
	c.Add("be1", mail.RoleBackend, "--queue-mode", "locally", "--forward-to", "*", "--filter", "cf="+filterBin)
	c.WaitOwners(t, "be1")
	fe, be := c.Admin("fe1"), c.Admin("be1")
	wait.For(t, 20*time.Second, func() bool {
		_, err := be.CreateAccount(context.Background(), admin.CreateAccount{Address: "alice@example.test", Password: "pw-for-tests-123"})
		return err == nil || strings.Contains(err.Error(), "exists")
	}, "creating alice")
	// The cluster-wide rule is set once, on the frontend; the backend gets it.
	set, err := fe.SetRules(context.Background(), "cluster", []byte(`[{"name":"scan","actions":[{"kind":"filter","value":"cf"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, func() bool {
		rs, err := be.Rules(context.Background(), "cluster")
		return err == nil && rs.Version == set.Version
	}, "the backend does not apply the cluster-wide rules")

	send := func(subject string) fakemx.Transaction {
		t.Helper()
		before := len(mx.Messages())
		raw := testkit.Message("alice@example.test", "bob@remote.test", subject, "generated on the backend")
		if _, err := be.Submit(context.Background(), "alice@example.test", "pw-for-tests-123", []string{"bob@remote.test"}, raw); err != nil {
			t.Fatal(err)
		}
		return mx.WaitMessages(t, before+1, 30*time.Second)[before]
	}
	runs := func() (int64, int64) { return stats(t, be).FilterRuns, stats(t, fe).FilterRuns }

	got := send("in mode locally")
	b1, f1 := runs()
	if b1 != 1 || f1 != 1 || strings.Count(string(got.Data), "X-Homing-Filtered: yes") != 2 {
		t.Fatalf("mode locally: filter ran %d times on be1 and %d on fe1, message filtered %d times; want 1, 1, 2",
			b1, f1, strings.Count(string(got.Data), "X-Homing-Filtered: yes"))
	}

	mode := "remotely"
	if _, err := be.UpdateSettings(context.Background(), admin.SettingsUpdate{QueueMode: &mode}); err != nil {
		t.Fatal(err)
	}
	// Every member sees the change (gossip) within seconds.
	wait.For(t, 10*time.Second, func() bool {
		v, err := fe.Cluster(context.Background())
		if err != nil {
			return false
		}
		for _, m := range v.Members {
			if m.Name == "be1" {
				return m.QueueMode == "remotely"
			}
		}
		return false
	}, "fe1 does not see be1's new queue mode")
	got = send("in mode remotely")
	b2, f2 := runs()
	if b2 != b1 || f2 != f1+1 || strings.Count(string(got.Data), "X-Homing-Filtered: yes") != 1 {
		t.Fatalf("mode remotely: filter ran %d more times on be1 and %d more on fe1, message filtered %d times; want 0, 1, 1",
			b2-b1, f2-f1, strings.Count(string(got.Data), "X-Homing-Filtered: yes"))
	}
	t.Logf("filter runs per backend-generated message: locally %d, remotely %d", b1+f1, (b2-b1)+(f2-f1))
}
