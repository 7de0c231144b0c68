package ctl

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
)

func TestJourney(t *testing.T) {
	e := newTestEnv(t, "")
	e.fake.Lock()
	e.fake.Journeys = map[string][]admin.JourneyEvent{
		"Q1": {
			{Time: t0, Node: "fe1", ID: "Q1", Event: "received", Detail: "from a@b.test via smtp"},
			{Time: t0.Add(3 * time.Millisecond), Node: "fe1", ID: "Q1", Event: "queued", Detail: ""},
			{Time: t0.Add(1200 * time.Millisecond), Node: "be2", ID: "Q1", Event: "delivered", Detail: "demo@example.test \x1b[2J"},
			{Time: t0.Add(2 * time.Second), Node: "fe1", ID: "Q1.dsn", Event: "queued", Detail: "delay report"},
		},
	}
	e.fake.Unlock()
	at := func(d time.Duration) string { return t0.Add(d).Local().Format("2006-01-02T15:04:05.000Z07:00") }

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

	var j admin.Journey
	if err := json.Unmarshal([]byte(e.run("", "--json", "journey", "Q1").ok(t).stdout), &j); err != nil || len(j.Steps) != 4 || j.Steps[3].ID != "Q1.dsn" {
		t.Errorf("--json journey %+v %v", j, err)
	}
	e.run("", "journey", "NOPE").failed(t, 1, "homing ctl: no record of message NOPE on any node (homing ctl queue --cluster lists the messages queued now; homing ctl journey --from/--to/--since finds others)")
	e.run("", "journey").failed(t, 2, "homing ctl: journey needs an ID, or --from, --to, --message-id, --since or --until to find messages")
	e.run("", "journey", "Q1", "--from", "a@b.test").failed(t, 2, "homing ctl: journey: give an ID or the search flags (--from, --to, --message-id, --since, --until), not both")
	e.run("", "journey", "--since", "yesterday").failed(t, 2, `homing ctl: --since: "yesterday" is neither a duration (24h, 90m) nor an RFC 3339 time (2026-12-01T10:00:00Z)`)
}

// journey with search flags lists the messages found, and the journey of
// the only one.
func TestJourneySearch(t *testing.T) {
	e := newTestEnv(t, "")
	e.fake.Lock()
	e.fake.Found = []admin.JourneyMessage{
		{ID: "Q1", Node: "fe1", Time: t0, From: "a@b.test", To: []string{"bob@example.test"}, MessageID: "<m1@b.test>", Subject: "first", Size: 10},
		{ID: "Q2", Node: "fe2", Time: t0.Add(time.Hour), From: "a@b.test", To: []string{"carol@example.test"}, Subject: "second", Size: 20},
	}
	e.fake.Journeys = map[string][]admin.JourneyEvent{"Q1": {{Time: t0, Node: "fe1", ID: "Q1", Event: "queued", Detail: "from a@b.test"}}}
	e.fake.Unlock()

	out := e.run("", "journey", "--from", "a@b.test").ok(t).stdout
	row(t, out, "QUEUED", "ID", "NODE", "FROM", "TO", "SUBJECT")
	row(t, out, formatTime(t0.Add(time.Hour)), "Q2", "fe2", "a@b.test", "carol@example.test", "second")
	row(t, out, formatTime(t0), "Q1", "fe1", "a@b.test", "bob@example.test", "first")
	if strings.Contains(out, "EVENT") {
		t.Errorf("a journey shown for two messages found:\n%s", out)
	}
	out = e.run("", "journey", "--message-id", "m1@b.test", "--since", "2025-01-01T00:00:00Z").ok(t).stdout
	row(t, out, formatTime(t0), "Q1", "fe1", "a@b.test", "bob@example.test", "first")
	row(t, out, "TIME", "NODE", "EVENT", "DETAIL")
	calls := e.fake.CallsTo("FindMessages")
	q := calls[len(calls)-1].Args[0].(admin.JourneyQuery)
	if q.MessageID != "m1@b.test" || !q.Since.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("the search asked for %+v", q)
	}
	e.run("", "journey", "--from", "a@b.test", "--since", "48h").ok(t)
	if q := e.fake.CallsTo("FindMessages"); time.Since(q[len(q)-1].Args[0].(admin.JourneyQuery).Since).Round(time.Hour) != 48*time.Hour {
		t.Errorf("--since 48h asked for %v", q[len(q)-1].Args[0])
	}
	if out := e.run("", "journey", "--to", "nobody@example.test").ok(t).stdout; !strings.Contains(out, "no message found") {
		t.Errorf("an empty search printed %q", out)
	}
	var found []admin.JourneyMessage
	if err := json.Unmarshal([]byte(e.run("", "--json", "journey", "--to", "@example.test").ok(t).stdout), &found); err != nil || len(found) != 2 {
		t.Errorf("--json search: %+v %v", found, err)
	}
}
