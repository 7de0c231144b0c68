package ctl

import (
	"encoding/json"
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

	var ev []admin.JourneyEvent
	if err := json.Unmarshal([]byte(e.run("", "--json", "journey", "Q1").ok(t).stdout), &ev); err != nil || len(ev) != 4 || ev[3].ID != "Q1.dsn" {
		t.Errorf("--json journey %+v %v", ev, err)
	}
	e.run("", "journey", "NOPE").failed(t, 1, "homing ctl: no record of message NOPE on any node (homing ctl queue --cluster lists the messages queued now)")
	e.run("", "journey").failed(t, 2, "homing ctl: journey needs exactly one ID")
}
