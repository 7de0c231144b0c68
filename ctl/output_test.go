package ctl

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/homing-mail/homing/admin"
)

// Every listing, and every command that shows something, has --json: the
// output is one JSON value (array or object) and nothing else.
func TestEveryListingHasJSON(t *testing.T) {
	e := newTestEnv(t, "")
	fillClusterQueue(e.fake)
	e.fake.Lock()
	e.fake.Journeys = map[string][]admin.JourneyEvent{"A1": {{Time: t0, Node: "fake", ID: "A1", Event: "queued"}}}
	e.fake.PartitionList = []admin.PartitionStatus{{ID: 0, Open: true}}
	e.fake.Unlock()
	for _, args := range [][]string{
		{"cluster"}, {"nodes"}, {"ready"}, {"partitions"}, {"actors"}, {"stats"}, {"settings"},
		{"accounts"}, {"accounts", "show", "demo@example.test"}, {"messages", "demo@example.test"},
		{"queue"}, {"queue", "--cluster"}, {"queue", "--node", "n2"}, {"queue", "show", "A1"},
		{"journey", "A1"}, {"rules"}, {"rules", "cluster"}, {"account-rules", "demo@example.test"},
		{"queue", "hold", "A1", "A2"}, {"queue", "release", "A1"}, {"queue", "retry", "--all"},
		{"settings", "set", "queue-mode", "locally"},
	} {
		r := e.run("", append(args, "--json")...)
		if r.code != 0 || strings.Trim(regexp.MustCompile(`(?m)^[0-9]+/[0-9]+$`).ReplaceAllString(r.stderr, ""), "\n") != "" {
			t.Errorf("%v --json: exit %d, stderr %q (only progress may be there)", args, r.code, r.stderr)
		}
		var v any
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Errorf("%v --json: not JSON (%v):\n%s", args, err, r.stdout)
			continue
		}
		switch v.(type) {
		case []any, map[string]any:
		default:
			t.Errorf("%v --json: %T, want an array or an object", args, v)
		}
		if !strings.HasSuffix(r.stdout, "\n") {
			t.Errorf("%v --json: no final newline", args)
		}
	}
	// A queue action's summary names what was done and what failed.
	r := e.run("", "queue", "hold", "A1", "NOPE", "--json")
	var sum actionSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 1 || sum.Action != "hold" ||
		len(sum.Done) != 1 || sum.Done[0] != "A1" || len(sum.Failed) != 1 || sum.Failed[0].ID != "NOPE" {
		t.Errorf("--json queue hold: exit %d, %+v %v", r.code, sum, err)
	}
}

// The server's internal prefixes never reach an error line.
func TestCleanMessage(t *testing.T) {
	for in, want := range map[string]string{
		"not found: storage: account x@y: not found":         "account x@y: not found",
		"invalid request: storage: invalid address: \"bad\"": "invalid address: \"bad\"",
		"be1: not found: no message Q in the queue of be1":   "no message Q in the queue of be1",
		"temporarily unavailable: partition 3 is moving":     "partition 3 is moving",
		"no account x@y":                     "no account x@y",
		"rule 1: unknown action \"explode\"": "rule 1: unknown action \"explode\"",
		"message 7 of x: storage: damaged":   "message 7 of x: storage: damaged",
	} {
		if got := cleanMessage(in); got != want {
			t.Errorf("cleanMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

// A 404 with the server's internal words is "no <thing>" with what to
// do, whichever command asked.
func TestNotFoundLines(t *testing.T) {
	e := newTestEnv(t, "")
	nf := &admin.Error{Status: 404, Message: "not found: storage: account ghost@example.test: not found"}
	for _, m := range []string{"Account", "Messages", "AccountRules", "DeleteAccount"} {
		e.fake.SetErr(m, nf)
	}
	want := "homing ctl: no account ghost@example.test (homing ctl accounts lists the accounts)"
	e.run("", "accounts", "show", "ghost@example.test").failed(t, 1, want)
	e.run("", "messages", "ghost@example.test").failed(t, 1, want)
	e.run("", "account-rules", "ghost@example.test").failed(t, 1, want)
	e.run("", "accounts", "delete", "ghost@example.test").failed(t, 1, want)
}
