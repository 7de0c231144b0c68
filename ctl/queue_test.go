package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
)

func TestQueue(t *testing.T) {
	e := newTestEnv(t, "")
	next := t1.Local().Format(time.RFC3339)
	out := e.run("", "queue").ok(t).stdout
	row(t, out, "ID", "STATE", "ATTEMPTS", "NEXT", "ATTEMPT", "SIZE", "SENDER", "RECIPIENTS", "LAST", "ERROR")
	row(t, out, "Q1", "deferred", "2", next, "1.5", "KiB", "<>", "x@remote.test", "(+1)", "451", "4.4.1", "try", "later")

	out = e.run("", "queue", "show", "Q1").ok(t).stdout
	row(t, out, "sender:", "<>")
	row(t, out, "next", "attempt:", next)
	row(t, out, "x@remote.test", "deferred", "2", next, "451", "4.4.1", "try", "later")
	row(t, out, "y@remote.test", "delivered", "1", "-", "-")

	var entry admin.QueueEntry
	if err := json.Unmarshal([]byte(e.run("", "queue", "show", "Q1", "--json").ok(t).stdout), &entry); err != nil || entry.ID != "Q1" || len(entry.Recipients) != 2 {
		t.Errorf("--json queue show: %+v %v", entry, err)
	}

	// A 404 is "no <thing>" with what to do; the server's own "no ..."
	// when it names the thing; a "no ..." about something else (a node)
	// is said about the thing. Internal prefixes never reach the line.
	noQ := "homing ctl: no message 01ABC in the queue (it may have left the queue: homing ctl journey 01ABC)"
	e.run("", "queue", "show", "01ABC").failed(t, 1, noQ)
	e.fake.SetErr("QueueEntry", &admin.Error{Status: 404, Message: "no such entry"})
	e.run("", "queue", "show", "Z9").failed(t, 1, "homing ctl: message Z9 in the queue: no such entry")
	e.fake.SetErr("QueueEntry", &admin.Error{Status: 404, Message: "queue entry Z9: not found"})
	e.run("", "queue", "show", "Z9").failed(t, 1, "homing ctl: no message Z9 in the queue (it may have left the queue: homing ctl journey Z9)")
	e.fake.SetErr("QueueEntry", &admin.Error{Status: 404, Message: "be1: not found: no message Z9 in the queue of be1"})
	e.run("", "queue", "show", "Z9").failed(t, 1, "homing ctl: no message Z9 in the queue of be1 (it may have left the queue: homing ctl journey Z9)")
	e.fake.SetErr("QueueEntry", &admin.Error{Status: 400, Message: "invalid request: storage: invalid id"})
	e.run("", "queue", "show", "Z9").failed(t, 1, "homing ctl: message Z9 in the queue: invalid id")
	e.fake.SetErr("QueueEntry", nil)
	e.fake.SetErr("Stats", errors.New("disk on fire"))
	e.run("", "stats").failed(t, 1, "homing ctl: stats: internal error (the node's log has the detail)")
	e.fake.SetErr("Stats", &admin.Error{Status: 503, Message: "temporarily unavailable: partition 3 is moving", RetryAfter: 7 * time.Second})
	e.run("", "stats").failed(t, 1, "homing ctl: stats: partition 3 is moving (temporary: try again in 7s)")
	e.fake.SetErr("Stats", nil)

	// Several ids: a batch with progress on stderr; each one is
	// reported, failures after the progress; a failure makes the exit
	// code 1.
	r := e.run("", "queue", "hold", "Q1", "01ABC")
	if r.stdout != "Q1: held\n" || r.code != 1 {
		t.Errorf("exit %d, stdout %q", r.code, r.stdout)
	}
	if want := "1/2\n2/2\n" + noQ + "\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	if e.run("", "queue", "release", "Q1").ok(t).stdout != "Q1: released\n" ||
		e.run("", "queue", "retry", "Q1").ok(t).stdout != "Q1: retry scheduled\n" ||
		e.run("", "queue", "delete", "Q1").ok(t).stdout != "Q1: deleted\n" {
		t.Errorf("queue actions printed the wrong lines")
	}
	var acts []string
	for _, c := range e.fake.CallsTo("QueueAction") {
		acts = append(acts, c.Args[0].(string)+" "+c.Args[1].(string))
	}
	slices.Sort(acts[:2]) // the batch's two run at once
	if strings.Join(acts, ",") != "01ABC hold,Q1 hold,Q1 release,Q1 retry,Q1 delete" {
		t.Errorf("actions %q", acts)
	}
	e.run("", "queue", "retry").failed(t, 2, "homing ctl: queue retry needs at least one ID")
	e.run("", "queue", "flush").failed(t, 2, `homing ctl: unknown queue command "flush" (show, retry, hold, release, delete)`)
}

// fillClusterQueue puts deferred, active and held messages in the queues of
// the node asked ("fake") and of n2 and n3.
func fillClusterQueue(f *admintest.Fake) {
	f.Lock()
	defer f.Unlock()
	f.NodeList = clusterNodes(t0)
	f.QueueList = []admin.QueueEntry{
		{ID: "A1", Sender: "a@b.test", State: "deferred", Attempts: 1, Size: 100, Recipients: []admin.QueueRecipient{{Address: "x@remote.test"}}},
		{ID: "A2", Sender: "a@b.test", State: "active", Size: 100},
		{ID: "B1", Node: "n2", Sender: "c@d.test", State: "deferred", Attempts: 3, Size: 2048, Recipients: []admin.QueueRecipient{{Address: "y@remote.test"}}},
		{ID: "B2", Node: "n2", Sender: "c@d.test", State: "held", Size: 10},
		{ID: "C1", Node: "n3", Sender: "", State: "deferred", Attempts: 9, Size: 10},
	}
}

func TestClusterQueue(t *testing.T) {
	e := newTestEnv(t, "")
	fillClusterQueue(e.fake)

	out := e.run("", "queue", "--cluster").ok(t).stdout
	row(t, out, "NODE", "ID", "STATE", "ATTEMPTS", "NEXT", "ATTEMPT", "SIZE", "SENDER", "RECIPIENTS", "LAST", "ERROR")
	row(t, out, "fake", "A1", "deferred", "1", "-", "100", "B", "a@b.test", "x@remote.test", "-")
	row(t, out, "n2", "B1", "deferred", "3", "-", "2.0", "KiB", "c@d.test", "y@remote.test", "-")
	row(t, out, "n2", "B2", "held", "0", "-", "10", "B", "c@d.test", "-", "-")
	row(t, out, "n3", "C1", "deferred", "9", "-", "10", "B", "<>", "-", "-")
	aligned(t, out, "NODE", 5)
	if n := strings.Count(out, "\n"); n != 6 {
		t.Errorf("%d lines, want a header and 5 entries:\n%s", n, out)
	}

	// Without --cluster: this node's queue, no NODE column.
	out = e.run("", "queue").ok(t).stdout
	if strings.Contains(out, "NODE") || strings.Contains(out, "B1") || !strings.Contains(out, "A2") {
		t.Errorf("node queue:\n%s", out)
	}
	// --node: one member's.
	out = e.run("", "queue", "--node", "n2").ok(t).stdout
	row(t, out, "n2", "B1", "deferred", "3", "-", "2.0", "KiB", "c@d.test", "y@remote.test", "-")
	if strings.Contains(out, "A1") || strings.Contains(out, "C1") {
		t.Errorf("--node n2 shows other nodes' messages:\n%s", out)
	}

	var q []admin.QueueEntry
	if err := json.Unmarshal([]byte(e.run("", "queue", "--cluster", "--json").ok(t).stdout), &q); err != nil || len(q) != 5 || q[0].Node != "fake" || q[4].Node != "n3" {
		t.Errorf("--json queue --cluster: %+v %v", q, err)
	}
	e.run("", "queue", "--cluster", "--node", "n2").failed(t, 2, "homing ctl: give only one of --cluster and --node")
}

func TestQueueActionOnNode(t *testing.T) {
	e := newTestEnv(t, "")
	fillClusterQueue(e.fake)

	if out := e.run("", "queue", "hold", "B1", "--node", "n2").ok(t).stdout; out != "B1: held\n" {
		t.Errorf("hold on n2 printed %q", out)
	}
	if out := e.run("", "queue", "delete", "--node", "n3", "C1").ok(t).stdout; out != "C1: deleted\n" {
		t.Errorf("delete on n3 printed %q", out)
	}
	// The message is looked for in that node's queue only.
	e.run("", "queue", "retry", "A1", "--node", "n2").failed(t, 1, "homing ctl: no message A1 in the queue of n2 (it may have left the queue: homing ctl journey A1)")
	e.run("", "queue", "release", "B2", "--node", "n9").failed(t, 1, "homing ctl: message B2 in the queue of n9: no node named n9")

	var got []string
	for _, c := range e.fake.CallsTo("NodeQueueAction") {
		got = append(got, strings.TrimSpace(fmt.Sprintln(c.Args...)))
	}
	if want := []string{"n2 B1 hold", "n3 C1 delete", "n2 A1 retry", "n9 B2 release"}; !slices.Equal(got, want) {
		t.Errorf("NodeQueueAction calls %q, want %q", got, want)
	}
	if n := len(e.fake.CallsTo("QueueAction")); n != 0 {
		t.Errorf("--node went to QueueAction %d times", n)
	}
	e.fake.Lock()
	states := map[string]string{}
	for _, q := range e.fake.QueueList {
		states[q.ID] = q.State
	}
	e.fake.Unlock()
	if states["B1"] != "held" || states["C1"] != "" {
		t.Errorf("queue after the actions: %v", states)
	}
	e.run("", "queue", "retry", "--cluster", "B1").failed(t, 2, "homing ctl: --cluster goes with --all (for single messages give --node N)")
	e.run("", "queue", "hold", "--all").failed(t, 2, "homing ctl: flag provided but not defined: -all")
}
