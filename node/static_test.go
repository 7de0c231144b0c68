package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// TestStaticClusterCannotSplit: two static backends, each with its own
// store, are both configured to own partitions 0-7 (a configuration
// mistake). s1 came first and holds the data; s2 detects the conflict and
// opens none of them (its store stays empty), and the conflict is shown in
// GET /api/v1/cluster. When s1 is killed, s2 still does not take the
// partitions (its store does not have the accounts) and no dynamic
// backend gets them: mail to the accounts is accepted and waits in the
// frontend's queue with 4.x, an address never seen is 451 4.4.3, never
// 5.1.1. When s1 comes back, every message is stored there once.
func TestStaticClusterCannotSplit(t *testing.T) {
	c := newCluster(t)
	storeA, storeB, storeD := t.TempDir(), t.TempDir(), t.TempDir()
	c.Add("fe", mail.RoleFrontend)
	c.Add("s1", mail.RoleBackend, "--static-partitions", "0-7", "--account-store", storeA)
	c.WaitOwners(t, "s1")
	accounts := makeAccounts(t, c.Admin("s1"), 8)
	fe := c.Admin("fe")
	for _, a := range accounts {
		if _, err := testkit.Send(c.SMTPAddr("fe"), "x@remote.test", []string{a}, testkit.Message("x@remote.test", a, "before", "before")); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range accounts {
		waitMessages(t, fe, a, 1)
	}

	c.Add("s2", mail.RoleBackend, "--static-partitions", "0-7", "--account-store", storeB)
	c.Add("d1", mail.RoleBackend, "--account-store", storeD) // a dynamic backend
	conflicted := func(name string) bool {
		cl, err := c.Admin(name).Cluster(context.Background())
		if err != nil || len(cl.Conflicts) != 8 {
			return false
		}
		for _, sc := range cl.Conflicts {
			if sc.Owner != "s1" || !slices.Equal(sc.Claimants, []string{"s1", "s2"}) {
				return false
			}
		}
		return true
	}
	wait.For(t, 30*time.Second, func() bool { return conflicted("fe") && conflicted("s2") },
		"the conflict on partitions 0-7 (owner s1, claimants s1,s2) not shown by fe and s2")
	opened := func(store string) []string {
		var out []string
		for p := range 8 {
			if _, err := os.Stat(filepath.Join(store, fmt.Sprintf("p%04d", p), "homing.epoch")); err == nil {
				out = append(out, fmt.Sprint(p))
			}
		}
		return out
	}
	if ps, err := c.Admin("s2").Partitions(context.Background()); err != nil || len(ps) != 0 {
		t.Fatalf("s2 runs partitions %+v (%v), want none: s1 owns them", ps, err)
	}
	if got := opened(storeB); len(got) != 0 {
		t.Fatalf("s2 opened partitions %v of its store while s1 owns them: the cluster split", got)
	}

	c.Kill("s1")
	wait.For(t, 30*time.Second, func() bool {
		cl, err := fe.Cluster(context.Background())
		if err != nil {
			return false
		}
		for _, p := range cl.Partitions {
			if p.Owner != "" {
				return false
			}
		}
		return true
	}, "partitions 0-7 not unowned after s1 died")
	for _, a := range accounts {
		if _, err := testkit.Send(c.SMTPAddr("fe"), "x@remote.test", []string{a}, testkit.Message("x@remote.test", a, "while down", "while down")); err != nil {
			t.Fatalf("mail to %s while its static owner is down: %v, want accepted (it waits in the queue)", a, err)
		}
	}
	_, err := testkit.Send(c.SMTPAddr("fe"), "x@remote.test", []string{"never-seen@example.test"},
		testkit.Message("x@remote.test", "never-seen@example.test", "?", "?"))
	assertSMTPCode(t, err, 451, "4.4.3")
	wait.For(t, 30*time.Second, func() bool {
		q, err := fe.Queue(context.Background())
		if err != nil || len(q) != len(accounts) {
			return false
		}
		for _, e := range q {
			for _, r := range e.Recipients {
				if r.State == "failed" || !strings.Contains(r.LastError, "4.") || strings.Contains(r.LastError, "5.1.1") {
					return false
				}
			}
		}
		return true
	}, "the frontend queue does not hold the %d messages deferred with 4.x", len(accounts))
	if got := opened(storeB); len(got) != 0 {
		t.Fatalf("s2 opened partitions %v of its (empty) store after s1 died", got)
	}
	if got := opened(storeD); len(got) != 0 {
		t.Fatalf("the dynamic backend opened static partitions %v", got)
	}

	c.Restart("s1")
	for _, a := range accounts {
		ms := waitMessages(t, fe, a, 2)
		if len(ms) != 2 {
			t.Fatalf("%s has %d messages after s1 came back, want 2", a, len(ms))
		}
	}
	wait.For(t, 30*time.Second, func() bool {
		q, err := fe.Queue(context.Background())
		return err == nil && len(q) == 0
	}, "the frontend queue did not drain after s1 came back")
}
