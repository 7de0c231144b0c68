package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
	"github.com/homing-mail/homing/mail"
)

// ctlClusterNodes is a cluster of three seen from n1: n2 is busy, n3 dead.
func ctlClusterNodes(oldest time.Time) []admin.NodeInfo {
	return []admin.NodeInfo{
		{
			Member: admin.Member{Name: "n1", Roles: []string{"frontend", "backend"}, QueueMode: "locally-for-others", State: "alive", SMTP: "127.0.0.1:2525", Admin: "127.0.0.1:8025", Version: "v1", Uptime: "2h0m0s"},
			Actors: map[string]int{"account": 3, "queue": 1, "partition": 2},
			Queue:  admin.QueueSummary{Total: 12, Active: 8, Deferred: 3, Held: 1, Oldest: &oldest, ByDomain: map[string]int{"remote.test": 12}},
			Partitions: []admin.PartitionStatus{
				{ID: 0, Open: true, ActiveAccounts: 2}, {ID: 2, Open: true, ActiveAccounts: 1}, {ID: 5, Open: false},
			},
			Activations: 7, Passivations: 4,
		},
		{
			Member: admin.Member{Name: "n2", Roles: []string{"backend"}, QueueMode: "remotely", State: "alive", Admin: "127.0.0.2:8025"},
			Actors: map[string]int{},
			Queue:  admin.QueueSummary{ByDomain: map[string]int{}},
		},
		{
			Member: admin.Member{Name: "n3", Roles: []string{"backend"}, QueueMode: "locally", State: "dead"},
			Error:  "not reachable: dead",
		},
	}
}

func TestCtlNodes(t *testing.T) {
	e := newCtlEnv(t, "tok")
	// 90.5 minutes ago: "1h30m" whatever the test's own speed.
	oldest := time.Now().Add(-90*time.Minute - 30*time.Second).UTC()
	e.fake.Lock()
	e.fake.NodeList = ctlClusterNodes(oldest)
	e.fake.Unlock()

	out := e.run("", "nodes").ok(t).stdout
	row(t, out, "NAME", "ROLES", "MODE", "STATE", "QUEUE", "T/D/H", "OLDEST", "PARTITIONS", "OPEN/ALL", "ACTORS", "ERROR")
	row(t, out, "n1", "frontend,backend", "locally-for-others", "alive", "12/3/1", "1h30m", "2/3", "6", "-")
	row(t, out, "n2", "backend", "remotely", "alive", "0/0/0", "-", "0/0", "0", "-")
	row(t, out, "n3", "backend", "locally", "dead", "0/0/0", "-", "0/0", "0", "not", "reachable:", "dead")
	aligned(t, out, "NAME", 3)

	var got []admin.NodeInfo
	if err := json.Unmarshal([]byte(e.run("", "nodes", "--json").ok(t).stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Queue.Deferred != 3 || !got[0].Queue.Oldest.Equal(oldest) || got[0].Activations != 7 ||
		len(got[0].Partitions) != 3 || got[2].Error != "not reachable: dead" || got[2].Partitions == nil {
		t.Errorf("--json nodes: %+v", got)
	}

	e.run("", "nodes", "extra").failed(t, 2, "homing ctl: nodes takes no arguments")
	e.fake.SetErr("Nodes", errors.New("channel down"))
	e.run("", "nodes").failed(t, 1, "homing ctl: nodes: internal error")
}

func TestCtlAgeOf(t *testing.T) {
	now := ctlT0
	for d, want := range map[time.Duration]string{
		0:                                     "0s",
		-time.Minute:                          "0s", // a clock ahead of ours
		59*time.Second + 999*time.Millisecond: "59s",
		4*time.Minute + 12*time.Second:        "4m12s",
		3*time.Hour + 7*time.Minute + 59*time.Second: "3h07m",
		53 * time.Hour: "2d05h",
	} {
		at := now.Add(-d)
		if got := ctlAgeOf(&at, now); got != want {
			t.Errorf("age %v = %q, want %q", d, got, want)
		}
	}
	if got := ctlAgeOf(nil, now); got != "-" {
		t.Errorf("no oldest entry: %q", got)
	}
}

func TestCtlJourney(t *testing.T) {
	e := newCtlEnv(t, "")
	e.fake.Lock()
	e.fake.Journeys = map[string][]admin.JourneyEvent{
		"Q1": {
			{Time: ctlT0, Node: "fe1", ID: "Q1", Event: "received", Detail: "from a@b.test via smtp"},
			{Time: ctlT0.Add(3 * time.Millisecond), Node: "fe1", ID: "Q1", Event: "queued", Detail: ""},
			{Time: ctlT0.Add(1200 * time.Millisecond), Node: "be2", ID: "Q1", Event: "delivered", Detail: "demo@example.test \x1b[2J"},
			{Time: ctlT0.Add(2 * time.Second), Node: "fe1", ID: "Q1.dsn", Event: "queued", Detail: "delay report"},
		},
	}
	e.fake.Unlock()
	at := func(d time.Duration) string { return ctlT0.Add(d).Local().Format("2006-01-02T15:04:05.000Z07:00") }

	out := e.run("", "journey", "Q1").ok(t).stdout
	row(t, out, "TIME", "NODE", "EVENT", "DETAIL")
	row(t, out, at(0), "fe1", "received", "from", "a@b.test", "via", "smtp")
	row(t, out, at(3*time.Millisecond), "fe1", "queued", "-")
	row(t, out, at(1200*time.Millisecond), "be2", "delivered", "demo@example.test", "?[2J")
	row(t, out, at(2*time.Second), "fe1", "queued", "[Q1.dsn]", "delay", "report")
	aligned(t, out, "TIME", 4)
	if c := e.fake.CallsTo("Journey"); len(c) != 1 || c[0].Args[0] != "Q1" {
		t.Errorf("Journey calls %+v", c)
	}

	var ev []admin.JourneyEvent
	if err := json.Unmarshal([]byte(e.run("", "--json", "journey", "Q1").ok(t).stdout), &ev); err != nil || len(ev) != 4 || ev[3].ID != "Q1.dsn" {
		t.Errorf("--json journey %+v %v", ev, err)
	}
	e.run("", "journey", "NOPE").failed(t, 1, "homing ctl: message NOPE: not found (no node remembers it)")
	e.run("", "journey").failed(t, 2, "homing ctl: journey needs exactly one ID")
}

// ctlClusterQueue puts deferred, active and held messages in the queues of
// the node asked ("fake") and of n2 and n3.
func ctlClusterQueue(f *admintest.Fake) {
	f.Lock()
	defer f.Unlock()
	f.NodeList = ctlClusterNodes(ctlT0)
	f.QueueList = []admin.QueueEntry{
		{ID: "A1", Sender: "a@b.test", State: "deferred", Attempts: 1, Size: 100, Recipients: []admin.QueueRecipient{{Address: "x@remote.test"}}},
		{ID: "A2", Sender: "a@b.test", State: "active", Size: 100},
		{ID: "B1", Node: "n2", Sender: "c@d.test", State: "deferred", Attempts: 3, Size: 2048, Recipients: []admin.QueueRecipient{{Address: "y@remote.test"}}},
		{ID: "B2", Node: "n2", Sender: "c@d.test", State: "held", Size: 10},
		{ID: "C1", Node: "n3", Sender: "", State: "deferred", Attempts: 9, Size: 10},
	}
}

func TestCtlClusterQueue(t *testing.T) {
	e := newCtlEnv(t, "")
	ctlClusterQueue(e.fake)

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

func TestCtlQueueActionOnNode(t *testing.T) {
	e := newCtlEnv(t, "")
	ctlClusterQueue(e.fake)

	if out := e.run("", "queue", "hold", "B1", "--node", "n2").ok(t).stdout; out != "B1: held\n" {
		t.Errorf("hold on n2 printed %q", out)
	}
	if out := e.run("", "queue", "delete", "--node", "n3", "C1").ok(t).stdout; out != "C1: deleted\n" {
		t.Errorf("delete on n3 printed %q", out)
	}
	// The message is looked for in that node's queue only.
	e.run("", "queue", "retry", "A1", "--node", "n2").failed(t, 1, "homing ctl: queue A1: not found")
	e.run("", "queue", "release", "B2", "--node", "n9").failed(t, 1, "homing ctl: queue B2: no node named n9")

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

func TestCtlSettingsSetNode(t *testing.T) {
	e := newCtlEnv(t, "tok")
	ctlClusterQueue(e.fake)
	out := e.run("", "settings", "set", "queue-mode", "remotely", "--node", "n1").ok(t).stdout
	row(t, out, "name:", "n1")
	row(t, out, "queue", "mode:", "remotely")
	calls := e.fake.CallsTo("NodeUpdateSettings")
	if len(calls) != 1 || calls[0].Args[0] != "n1" || *calls[0].Args[1].(admin.SettingsUpdate).QueueMode != "remotely" {
		t.Fatalf("NodeUpdateSettings calls %+v", calls)
	}
	if n := len(e.fake.CallsTo("UpdateSettings")); n != 0 {
		t.Errorf("--node changed this node's settings")
	}
	e.fake.Lock()
	mode := e.fake.NodeList[0].QueueMode
	e.fake.Unlock()
	if mode != "remotely" {
		t.Errorf("n1's mode is %q", mode)
	}
	var s admin.Settings
	if err := json.Unmarshal([]byte(e.run("", "--json", "settings", "set", "queue-mode", "locally", "--node", "n2").ok(t).stdout), &s); err != nil || s.Name != "n2" || s.QueueMode != "locally" {
		t.Errorf("--json settings set --node: %+v %v", s, err)
	}
	e.run("", "settings", "set", "queue-mode", "locally", "--node", "n9").failed(t, 1, "homing ctl: no node named n9")
	e.run("", "settings", "set", "queue-mode", "often", "--node", "n2").failed(t, 2, `homing ctl: queue mode "often": must be locally, locally-for-others or remotely`)
	if n := len(e.fake.CallsTo("NodeUpdateSettings")); n != 3 {
		t.Errorf("NodeUpdateSettings called %d times, want 3 (not for the invalid mode)", n)
	}
}

// ctlDeferred returns n deferred messages D00, D01, ... of node ("" is the
// node asked), and a few that are not deferred.
func ctlDeferred(n int, node string) []admin.QueueEntry {
	var q []admin.QueueEntry
	for i := range n {
		q = append(q, admin.QueueEntry{ID: fmt.Sprintf("%sD%02d", node, i), Node: node, State: "deferred"})
	}
	q = append(q, admin.QueueEntry{ID: node + "ACT", Node: node, State: "active"}, admin.QueueEntry{ID: node + "HELD", Node: node, State: "held"})
	return q
}

// progressLines checks that stderr is only the plain progress lines of a
// batch of total and that the last one is total/total.
func progressLines(t *testing.T, stderr string, total int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	re := regexp.MustCompile(fmt.Sprintf(`^[0-9]+/%d$`, total))
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("stderr line %q is not progress of %d", l, total)
		}
	}
	if want := fmt.Sprintf("%d/%d", total, total); lines[len(lines)-1] != want {
		t.Errorf("last progress line %q, want %q", lines[len(lines)-1], want)
	}
	if len(lines) > 11 {
		t.Errorf("%d progress lines for %d items: want one per tenth", len(lines), total)
	}
}

func TestCtlRetryAll(t *testing.T) {
	e := newCtlEnv(t, "")
	e.fake.Lock()
	e.fake.QueueList = ctlDeferred(25, "")
	e.fake.Unlock()

	r := e.run("", "queue", "retry", "--all")
	if r.code != 0 || r.stdout != "retried 25 deferred messages\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	progressLines(t, r.stderr, 25)
	var ids []string
	for _, c := range e.fake.CallsTo("QueueAction") {
		if c.Args[1] != admin.ActionRetry {
			t.Errorf("action %v", c.Args[1])
		}
		ids = append(ids, c.Args[0].(string))
	}
	slices.Sort(ids)
	var want []string
	for i := range 25 {
		want = append(want, fmt.Sprintf("D%02d", i))
	}
	if !slices.Equal(ids, want) {
		t.Errorf("retried %v, want every deferred message once: %v", ids, want)
	}

	// Nothing deferred: nothing sent, no progress.
	r = e.run("", "queue", "retry", "--all").ok(t)
	if r.stdout != "no deferred messages\n" {
		t.Errorf("second run printed %q", r.stdout)
	}
}

func TestCtlRetryAllFailures(t *testing.T) {
	e := newCtlEnv(t, "")
	e.fake.Lock()
	e.fake.QueueList = ctlDeferred(20, "")
	e.fake.ErrFor = func(c admintest.Call) error {
		switch {
		case c.Method == "QueueAction" && c.Args[0] == "D03":
			return errors.New("disk on fire")
		case c.Method == "QueueAction" && c.Args[0] == "D05":
			return fmt.Errorf("queue D05: %w", mail.ErrNotFound) // delivered meanwhile
		}
		return nil
	}
	e.fake.Unlock()

	r := e.run("", "queue", "retry", "--all")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", r.code, r.stderr)
	}
	if r.stdout != "D05: gone (queue D05: not found)\nretried 18 of 20 deferred messages (1 gone, 1 failed)\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	failures := regexp.MustCompile(`(?m)^homing ctl: .*$`).FindAllString(r.stderr, -1)
	if !slices.Equal(failures, []string{"homing ctl: queue D03: internal error"}) {
		t.Errorf("failures on stderr %q", failures)
	}
	progressLines(t, regexp.MustCompile(`(?m)^homing ctl: .*\n`).ReplaceAllString(r.stderr, ""), 20)

	// Only gone messages: not a failure.
	e.fake.Lock()
	e.fake.QueueList = ctlDeferred(20, "")
	e.fake.ErrFor = func(c admintest.Call) error {
		if c.Method == "QueueAction" && c.Args[0] == "D07" {
			return fmt.Errorf("queue D07: %w", mail.ErrNotFound)
		}
		return nil
	}
	e.fake.Unlock()
	r = e.run("", "queue", "retry", "--all", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d; stderr %q", r.code, r.stderr)
	}
	var sum struct {
		Deferred, Retried int
		Gone, Failed      []map[string]any
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Deferred != 20 || sum.Retried != 19 ||
		len(sum.Gone) != 1 || sum.Gone[0]["id"] != "D07" || sum.Failed == nil || len(sum.Failed) != 0 {
		t.Errorf("--json summary %s (%v)", r.stdout, err)
	}
}

func TestCtlRetryAllCluster(t *testing.T) {
	e := newCtlEnv(t, "")
	e.fake.Lock()
	e.fake.NodeList = ctlClusterNodes(ctlT0)
	e.fake.QueueList = slices.Concat(ctlDeferred(3, ""), ctlDeferred(4, "n2"), ctlDeferred(2, "n3"))
	e.fake.Unlock()

	r := e.run("", "queue", "retry", "--all", "--cluster")
	if r.code != 0 || r.stdout != "retried 9 deferred messages\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	progressLines(t, r.stderr, 9)
	var got []string
	for _, c := range e.fake.CallsTo("NodeQueueAction") {
		got = append(got, strings.TrimSpace(fmt.Sprintln(c.Args...)))
	}
	slices.Sort(got)
	want := []string{"fake D00 retry", "fake D01 retry", "fake D02 retry", "n2 n2D00 retry", "n2 n2D01 retry", "n2 n2D02 retry", "n2 n2D03 retry", "n3 n3D00 retry", "n3 n3D01 retry"}
	if !slices.Equal(got, want) {
		t.Errorf("NodeQueueAction calls\n%q, want\n%q", got, want)
	}
	if n := len(e.fake.CallsTo("QueueAction")); n != 0 {
		t.Errorf("--cluster used QueueAction %d times", n)
	}

	// --node: one member's deferred messages, through ?node=.
	e.fake.Lock()
	e.fake.QueueList = slices.Concat(ctlDeferred(3, ""), ctlDeferred(4, "n2"), ctlDeferred(2, "n3"))
	e.fake.ErrFor = func(c admintest.Call) error {
		if c.Method == "NodeQueueAction" && c.Args[1] == "n3D01" {
			return &admin.Error{Status: 503, Message: "node n3 is suspect"}
		}
		return nil
	}
	e.fake.Unlock()
	r = e.run("", "queue", "retry", "--all", "--node", "n3")
	if r.code != 1 || r.stdout != "retried 1 of 2 deferred messages (0 gone, 1 failed)\n" || r.stderr != "1/2\n2/2\nhoming ctl: n3: queue n3D01: node n3 is suspect\n" {
		t.Errorf("--node n3: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	calls := e.fake.CallsTo("NodeQueueAction")
	for _, c := range calls[len(want):] {
		if c.Args[0] != "n3" {
			t.Errorf("--node n3 acted on %v", c.Args)
		}
	}
	if len(calls) != len(want)+2 {
		t.Errorf("--node n3: %d calls, want 2", len(calls)-len(want))
	}

	e.run("", "queue", "retry", "--all", "D00").failed(t, 2, "homing ctl: queue retry --all takes no ID")
	e.run("", "queue", "retry", "--all", "--cluster", "--node", "n2").failed(t, 2, "homing ctl: give only one of --cluster and --node")
}
