package node_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/ctl"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// runCtl runs `homing ctl ARGS` against adminAddr in this process and
// returns its output; it fails the test when ctl does.
func runCtl(t *testing.T, adminAddr string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := ctl.Main(append([]string{"--admin", adminAddr}, args...), strings.NewReader(""), &out, &errOut,
		func(string) string { return "" })
	if code != 0 {
		t.Fatalf("homing ctl %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String()
}

// The journey survives restarts (issue #12 item 2): each node keeps its
// journal on disk, so after a restart of every node, one after the other,
// `homing ctl journey ID` through any node still shows every step, and a
// search by Message-ID, sender, recipient and time finds the message.
func TestJourneySurvivesRestarts(t *testing.T) {
	c := newCluster(t)
	c.Add("fe", mail.RoleFrontend)
	c.Add("be1", mail.RoleBackend)
	c.WaitOwners(t, "be1")
	ctx := context.Background()
	fe := c.Admin("fe")
	accounts := makeAccounts(t, fe, 1)
	start := time.Now()
	mid := fmt.Sprintf("<journey-%d@remote.test>", start.UnixNano())
	msg := []byte("From: <x@remote.test>\r\nTo: <" + accounts[0] + ">\r\nMessage-ID: " + mid + "\r\nSubject: follow me\r\n\r\nbody\r\n")
	reply, err := testkit.Send(c.SMTPAddr("fe"), "x@remote.test", accounts, msg)
	if err != nil {
		t.Fatal(err)
	}
	id := reply[strings.LastIndexByte(reply, ' ')+1:]
	waitMessages(t, fe, accounts[0], 1)
	steps := func(via string) []admin.JourneyEvent {
		ev, _ := c.Admin(via).Journey(ctx, id)
		return ev
	}
	complete := func(ev []admin.JourneyEvent) bool {
		return hasEvent(ev, "fe", "queued") && hasEvent(ev, "fe", "delivered") && hasEvent(ev, "be1", "stored") && hasEvent(ev, "fe", "left")
	}
	var before []admin.JourneyEvent
	wait.For(t, 10*time.Second, func() bool { before = steps("fe"); return complete(before) }, "the journey of %s: %+v", id, before)

	for _, node := range []string{"fe", "be1"} {
		c.Restart(node)
		for _, via := range []string{"fe", "be1"} {
			after := steps(via)
			if len(after) != len(before) || !complete(after) {
				t.Fatalf("after a restart of %s, the journey through %s is %+v, want the %d steps from before: %+v",
					node, via, after, len(before), before)
			}
		}
	}

	// homing ctl journey ID, through the backend, after the restarts.
	out := runCtl(t, c.Process("be1").Admin, "journey", id)
	for _, want := range []string{"queued", "delivered", "stored", "left", "be1", "fe"} {
		if !strings.Contains(out, want) {
			t.Errorf("homing ctl journey %s does not show %q:\n%s", id, want, out)
		}
	}

	// Found by Message-ID, sender, recipient and time, through either node.
	for _, q := range []admin.JourneyQuery{
		{MessageID: mid},
		{From: "x@remote.test"},
		{To: accounts[0], Since: start.Add(-time.Minute)},
		{To: "@" + mail.Domain(accounts[0])},
	} {
		found, err := c.Admin("be1").FindMessages(ctx, q)
		if err != nil || len(found) != 1 || found[0].ID != id || found[0].Node != "fe" || found[0].Subject != "follow me" ||
			found[0].MessageID != mid {
			t.Errorf("FindMessages(%+v) = %+v, %v; want %s queued on fe", q, found, err, id)
		}
	}
	if found, err := c.Admin("fe").FindMessages(ctx, admin.JourneyQuery{From: "x@remote.test", Since: time.Now().Add(time.Hour)}); err != nil || len(found) != 0 {
		t.Errorf("a search after the message: %+v, %v", found, err)
	}
	out = runCtl(t, c.Process("fe").Admin, "journey", "--message-id", mid)
	if !strings.Contains(out, id) || !strings.Contains(out, "stored") {
		t.Errorf("homing ctl journey --message-id did not list %s and its journey:\n%s", id, out)
	}
}
