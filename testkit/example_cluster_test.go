//go:build !race

// In-process clusters run several protoactor remotes in one process, which
// has data races inside protoactor (see Cluster): these tests are built
// without -race only. `make test` runs `go test ./testkit` without -race
// for them.

package testkit

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit/wait"
)

// TestExampleCluster shows how a test drives an in-process cluster: one
// frontend and two backends; mail sent to the frontend reaches an account
// on a backend; when that backend dies its partitions move to the other
// and mail keeps flowing; while the frontend is cut off from the backends
// mail waits in its queue, and it is delivered once the network heals.
func TestExampleCluster(t *testing.T) {
	ctx := context.Background()
	c := StartCluster(t, ClusterOptions{Frontends: 1, Backends: 2})
	fe := c.Admin("fe1")
	smtpAddr := c.Node("fe1").SMTPAddr()

	// An account, created through the frontend, lives on a backend.
	const alice = "alice@example.test"
	if _, err := fe.CreateAccount(ctx, admin.CreateAccount{Address: alice, Password: "secret-words-1"}); err != nil {
		t.Fatalf("creating %s through the frontend: %v", alice, err)
	}
	acct, err := fe.Account(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if acct.Owner != "be1" && acct.Owner != "be2" {
		t.Fatalf("%s is owned by %q, want a backend", alice, acct.Owner)
	}

	// Mail sent to the frontend over SMTP lands in the mailbox.
	send(t, smtpAddr, alice, "first")
	waitMailbox(t, c, alice, "first")

	// The backend holding the account dies; the other takes over its
	// partitions, and mail still flows (the first message is still there).
	c.Kill(acct.Owner)
	c.WaitSettled(t)
	survivor := map[string]string{"be1": "be2", "be2": "be1"}[acct.Owner]
	view, err := fe.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range view.Partitions {
		if p.Owner != survivor {
			t.Fatalf("partition %d is owned by %q after %s died, want %s", p.ID, p.Owner, acct.Owner, survivor)
		}
	}
	send(t, smtpAddr, alice, "second")
	waitMailbox(t, c, alice, "first", "second")

	// The frontend is cut off from the backends: it sees them dead, so it
	// keeps mail for known accounts in its queue instead of delivering it.
	c.Isolate("fe1")
	wait.For(t, 20*time.Second, func() bool { return memberState(c, "fe1", survivor) == "dead" },
		"fe1 does not see %s dead while isolated", survivor)
	send(t, smtpAddr, alice, "third")
	if q, err := fe.Queue(ctx); err != nil || len(q) != 1 {
		t.Fatalf("frontend queue holds %d messages (err %v), want the one waiting: %+v", len(q), err, q)
	}

	// Healed, the frontend finds the backend again and delivers.
	c.Heal()
	c.WaitSettled(t)
	waitMailbox(t, c, alice, "first", "second", "third")
	wait.For(t, 20*time.Second, func() bool {
		q, err := fe.Queue(ctx)
		return err == nil && len(q) == 0
	}, "frontend queue not empty after the heal")
}

// send sends a message with the given subject to rcpt through addr.
func send(t *testing.T, addr, rcpt, subject string) {
	t.Helper()
	reply, err := Send(addr, "sender@remote.test", []string{rcpt}, Message("sender@remote.test", rcpt, subject, "hello"))
	if err != nil {
		t.Fatalf("sending %q to %s: %v", subject, rcpt, err)
	}
	if !strings.Contains(reply, "queued") {
		t.Fatalf("sending %q: reply %q, want queued", subject, reply)
	}
}

// waitMailbox waits until addr's mailbox (read through fe1) holds exactly
// messages with the given subjects, in order.
func waitMailbox(t *testing.T, c *Cluster, addr string, subjects ...string) {
	t.Helper()
	fe := c.Admin("fe1")
	var got []string
	wait.For(t, 20*time.Second, func() bool {
		ms, err := fe.Messages(context.Background(), addr)
		if err != nil {
			return false
		}
		got = got[:0]
		for _, m := range ms {
			raw, err := fe.RawMessage(context.Background(), addr, m.ID)
			if err != nil {
				return false
			}
			got = append(got, subjectOf(raw))
		}
		return strings.Join(got, ",") == strings.Join(subjects, ",")
	}, "%s holds %v, want %v", addr, wait.Lazy(func() string { return strings.Join(got, ",") }), subjects)
}

func subjectOf(raw []byte) string {
	for _, line := range bytes.Split(raw, []byte("\r\n")) {
		if s, ok := bytes.CutPrefix(line, []byte("Subject: ")); ok {
			return string(s)
		}
	}
	return ""
}

// memberState is the state of member as node from sees it ("" if unknown).
func memberState(c *Cluster, from, member string) string {
	v, err := c.Admin(from).Cluster(context.Background())
	if err != nil {
		return ""
	}
	for _, m := range v.Members {
		if m.Name == member {
			return m.State
		}
	}
	return ""
}
