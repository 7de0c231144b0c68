package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// Any node answers for the whole cluster: its members and their
// partitions and queues, a message's journey across nodes, and actions on
// another member's queue and settings.
func TestClusterIntrospection(t *testing.T) {
	c := newCluster(t)
	c.Add("fe", mail.RoleFrontend)
	c.Add("be1", mail.RoleBackend)
	c.Add("be2", mail.RoleBackend)
	c.WaitOwners(t, "be1", "be2")
	fe := c.Admin("fe")
	ctx := context.Background()

	nodes, err := c.Admin("be1").Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 {
		t.Fatalf("nodes = %+v, want 3", nodes)
	}
	parts := 0
	for _, n := range nodes {
		if n.Error != "" {
			t.Errorf("node %s: %s", n.Name, n.Error)
		}
		parts += len(n.Partitions)
		if n.Name == "fe" && len(n.Partitions) != 0 {
			t.Errorf("the frontend runs partitions %v", n.Partitions)
		}
	}
	if parts != 8 {
		t.Errorf("the nodes run %d partitions in all, want 8", parts)
	}

	accounts := makeAccounts(t, fe, 1)
	reply, err := testkit.Send(c.SMTPAddr("fe"), "x@remote.test", accounts, testkit.Message("x@remote.test", accounts[0], "journey", "follow me"))
	if err != nil {
		t.Fatal(err)
	}
	id := reply[strings.LastIndexByte(reply, ' ')+1:]
	waitMessages(t, fe, accounts[0], 1)
	acct, _ := fe.Account(ctx, accounts[0])
	var ev []admin.JourneyEvent
	wait.For(t, 10*time.Second, func() bool {
		ev, err = c.Admin("be2").Journey(ctx, id)
		return err == nil && hasEvent(ev, "fe", "queued") && hasEvent(ev, "fe", "delivered") && hasEvent(ev, acct.Owner, "stored") && hasEvent(ev, "fe", "left")
	}, "journey of %s seen from be2: %+v", id, ev)

	// A held message in the frontend's queue, acted on through a backend.
	mode := "remotely"
	if _, err := c.Admin("be1").NodeUpdateSettings(ctx, "be2", admin.SettingsUpdate{QueueMode: &mode}); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Admin("be2").Settings(ctx); s.QueueMode != "remotely" {
		t.Fatalf("be2's queue mode is %q after a change through be1", s.QueueMode)
	}
	if err := c.Admin("be1").NodeQueueAction(ctx, "fe", "NO-SUCH-ID", "hold"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("action on a missing message through another node: %v", err)
	}
	if q, err := c.Admin("be1").ClusterQueue(ctx); err != nil || len(q) != 0 {
		t.Fatalf("cluster queue = %v, %v; want empty", q, err)
	}
}

func hasEvent(ev []admin.JourneyEvent, node, event string) bool {
	for _, e := range ev {
		if e.Node == node && e.Event == event {
			return true
		}
	}
	return false
}
