package node_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
)

// modeCluster starts frontends (relaying remote.test to mx) and one
// backend be1 in queue mode Remotely that forwards non-local mail to the
// frontends, and creates alice on it.
func modeCluster(t *testing.T, mx *testkit.FakeMX, feModes ...string) (*testCluster, *admin.Client) {
	t.Helper()
	c := newTestCluster(t)
	var fes []string
	for i, m := range feModes {
		name := []string{"fe1", "fe2", "fe3"}[i]
		c.add(name, "frontend", "--queue-mode", m, "--route", "remote.test="+mx.Addr)
		fes = append(fes, name)
	}
	c.add("be1", "backend", "--queue-mode", "remotely", "--forward-to", "*")
	c.waitOwners(fes[0], "be1")
	be := c.admin("be1")
	testkit.Eventually(t, 20*time.Second, func() bool {
		_, err := be.CreateAccount(context.Background(), admin.CreateAccount{Address: "alice@example.test", Password: "alice-pw-123"})
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
	mx := testkit.StartFakeMX(t)
	_, be := modeCluster(t, mx, "locally-for-others")
	raw := testkit.Message("alice@example.test", "bob@remote.test", "remotely", "generated on a backend")
	id, err := be.Submit(context.Background(), "alice@example.test", "alice-pw-123", []string{"bob@remote.test"}, raw)
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
	testkit.Eventually(t, 10*time.Second, func() bool { return stats(t, be).Transferred == 1 }, "be1 counted %d transfers", stats(t, be).Transferred)
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
	mx := testkit.StartFakeMX(t)
	c, be := modeCluster(t, mx, "locally")
	_ = c
	raw := testkit.Message("alice@example.test", "bob@remote.test", "fallback", "no taker")
	if _, err := be.Submit(context.Background(), "alice@example.test", "alice-pw-123", []string{"bob@remote.test"}, raw); err != nil {
		t.Fatal(err)
	}
	got := mx.WaitMessages(t, 1, 30*time.Second)
	if !bytes.HasSuffix(got[0].Data, raw) {
		t.Fatalf("MX got %q", got[0].Data)
	}
	var s admin.Stats
	testkit.Eventually(t, 10*time.Second, func() bool { s = stats(t, be); return s.Relayed == 1 },
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
	mx := testkit.StartFakeMX(t)
	c, be := modeCluster(t, mx, "locally-for-others", "locally")
	c.nodes["fe1"].Kill()
	raw := testkit.Message("alice@example.test", "bob@remote.test", "after kill", "the taker is gone")
	if _, err := be.Submit(context.Background(), "alice@example.test", "alice-pw-123", []string{"bob@remote.test"}, raw); err != nil {
		t.Fatal(err)
	}
	got := mx.WaitMessages(t, 1, 60*time.Second)
	if !bytes.HasSuffix(got[0].Data, raw) || !bytes.Contains(got[0].Data, []byte("by fe2 ")) {
		t.Fatalf("MX got, not through fe2:\n%s", got[0].Data)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		q, err := be.Queue(context.Background())
		return err == nil && len(q) == 0
	}, "be1's queue not empty")
	if n := len(mx.Messages()); n != 1 {
		t.Fatalf("MX got %d copies, want exactly one", n)
	}
}
