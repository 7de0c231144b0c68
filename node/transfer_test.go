package node_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/wait"
)

// takerKilledCluster starts the Locally-for-Others frontend fe1, armed to
// kill itself (-9) right after it has stored a transfer durably and
// before its reply, a frontend fe2 in mode Locally (both relay
// remote.test to mx), and the backend be1 in mode Remotely forwarding
// non-local mail to the frontends with confirmTimeout. It submits one
// message on be1 and returns once fe1 has stored it and died, with the
// message's id.
func takerKilledCluster(t *testing.T, mx *fakemx.Server, confirmTimeout string) (*testkit.Cluster, string, []byte) {
	t.Helper()
	arm := filepath.Join(t.TempDir(), "kill-fe1")
	if err := os.WriteFile(arm, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	c.Add("fe1", mail.RoleFrontend, "--queue-mode", "locally-for-others", "--route", "remote.test="+mx.Addr,
		"--test-kill-after-transfer-stored", arm)
	c.Add("fe2", mail.RoleFrontend, "--queue-mode", "locally", "--route", "remote.test="+mx.Addr)
	c.Add("be1", mail.RoleBackend, "--queue-mode", "remotely", "--forward-to", "*", "--transfer-confirm-timeout", confirmTimeout)
	c.WaitOwners(t, "be1")
	be := c.Admin("be1")
	wait.For(t, 20*time.Second, func() bool {
		_, err := be.CreateAccount(context.Background(), admin.CreateAccount{Address: "alice@example.test", Password: "pw-for-tests-123"})
		return err == nil || strings.Contains(err.Error(), "exists")
	}, "creating alice")
	raw := testkit.Message("alice@example.test", "bob@remote.test", "unclear reply", "fe1 dies before its 250")
	id, err := be.Submit(context.Background(), "alice@example.test", "pw-for-tests-123", []string{"bob@remote.test"}, raw)
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, func() bool {
		_, err := os.Stat(arm)
		return errors.Is(err, fs.ErrNotExist)
	}, "fe1 stores the transfer and kills itself")
	c.Kill("fe1") // reaps it: it is gone already
	return c, id, raw
}

// drained waits until the queues of names are empty.
func drained(t *testing.T, c *testkit.Cluster, names ...string) {
	t.Helper()
	for _, name := range names {
		cl := c.Admin(name)
		wait.For(t, 60*time.Second, func() bool {
			q, err := cl.Queue(context.Background())
			return err == nil && len(q) == 0
		}, "%s's queue does not drain", name)
	}
}

// TestRemotelyTakerKilledBeforeReplyProcessedOnce (issue #9 item 8): the
// Locally-for-Others frontend is killed -9 right after it stored a
// transfer, before its reply. The backend, which cannot tell whether fe1
// has it, does not process it (before the fix it did, and fe1 processed
// its copy too after its restart: two relayed copies). fe1, back, asks
// be1, and relays it: exactly one copy, processed on fe1.
func TestRemotelyTakerKilledBeforeReplyProcessedOnce(t *testing.T) {
	mx := fakemx.Start(t)
	c, id, raw := takerKilledCluster(t, mx, "1h")
	wait.Never(t, 3*time.Second, func() bool { return len(mx.Messages()) > 0 },
		"be1 processed %s while fe1, which holds it, was down", id)
	c.Restart("fe1")
	got := mx.WaitMessages(t, 1, 60*time.Second)
	drained(t, c, "be1", "fe1", "fe2")
	if n := len(mx.Messages()); n != 1 {
		t.Fatalf("MX got %d copies, want exactly one", n)
	}
	if !bytes.HasSuffix(got[0].Data, raw) || !bytes.Contains(got[0].Data, []byte("by fe1 ")) || !bytes.Contains(got[0].Data, []byte("id "+id)) {
		t.Fatalf("the copy was not processed on fe1 under id %s:\n%s", id, got[0].Data)
	}
}

// TestRemotelyTakerDownPastConfirmTimeoutProcessedOnce: the same, but fe1
// stays down past be1's --transfer-confirm-timeout: be1 processes the
// message (forwarded through fe2), and fe1, back, drops its copy when be1
// tells it so (before the fix it relayed it too).
func TestRemotelyTakerDownPastConfirmTimeoutProcessedOnce(t *testing.T) {
	mx := fakemx.Start(t)
	c, id, raw := takerKilledCluster(t, mx, "2s")
	got := mx.WaitMessages(t, 1, 60*time.Second)
	if !bytes.HasSuffix(got[0].Data, raw) || !bytes.Contains(got[0].Data, []byte("by fe2 ")) {
		t.Fatalf("the copy did not come through fe2:\n%s", got[0].Data)
	}
	c.Restart("fe1")
	drained(t, c, "be1", "fe1", "fe2")
	if n := len(mx.Messages()); n != 1 {
		t.Fatalf("MX got %d copies of %s, want exactly one", n, id)
	}
}
