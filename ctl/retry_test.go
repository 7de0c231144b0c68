package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
	"github.com/homing-mail/homing/mail"
)

// deferredEntries returns n deferred messages D00, D01, ... of node ("" is the
// node asked), and a few that are not deferred.
func deferredEntries(n int, node string) []admin.QueueEntry {
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

func TestRetryAll(t *testing.T) {
	e := newTestEnv(t, "")
	e.fake.Lock()
	e.fake.QueueList = deferredEntries(25, "")
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

func TestRetryAllFailures(t *testing.T) {
	e := newTestEnv(t, "")
	e.fake.Lock()
	e.fake.QueueList = deferredEntries(20, "")
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
	if r.stdout != "D05: gone (no message D05 in the queue)\nretried 18 of 20 deferred messages (1 gone, 1 failed)\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	failures := regexp.MustCompile(`(?m)^homing ctl: .*$`).FindAllString(r.stderr, -1)
	if !slices.Equal(failures, []string{"homing ctl: message D03 in the queue: internal error (the node's log has the detail)"}) {
		t.Errorf("failures on stderr %q", failures)
	}
	progressLines(t, regexp.MustCompile(`(?m)^homing ctl: .*\n`).ReplaceAllString(r.stderr, ""), 20)

	// Only gone messages: not a failure.
	e.fake.Lock()
	e.fake.QueueList = deferredEntries(20, "")
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

func TestRetryAllCluster(t *testing.T) {
	e := newTestEnv(t, "")
	e.fake.Lock()
	e.fake.NodeList = clusterNodes(t0)
	e.fake.QueueList = slices.Concat(deferredEntries(3, ""), deferredEntries(4, "n2"), deferredEntries(2, "n3"))
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
	e.fake.QueueList = slices.Concat(deferredEntries(3, ""), deferredEntries(4, "n2"), deferredEntries(2, "n3"))
	e.fake.ErrFor = func(c admintest.Call) error {
		if c.Method == "NodeQueueAction" && c.Args[1] == "n3D01" {
			return &admin.Error{Status: 503, Message: "node n3 is suspect"}
		}
		return nil
	}
	e.fake.Unlock()
	r = e.run("", "queue", "retry", "--all", "--node", "n3")
	if r.code != 1 || r.stdout != "retried 1 of 2 deferred messages (0 gone, 1 failed)\n" || r.stderr != "1/2\n2/2\nhoming ctl: message n3D01 in the queue of n3: node n3 is suspect (temporary: try again in 5s)\n" {
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
