package ctl

import (
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	e := newTestEnv(t, "")
	rules := `[{"name":"scan","actions":[{"kind":"filter","value":"cf"}]}]`
	r := e.run(rules, "rules", "set", "cluster", "-").ok(t)
	if !strings.Contains(r.stdout, `"name": "scan"`) {
		t.Fatalf("rules set printed %q", r.stdout)
	}
	if got := string(e.fake.RuleSets["cluster"].Rules); !strings.Contains(got, `"scan"`) {
		t.Fatalf("the API got %q", got)
	}
	r = e.run("", "rules", "cluster").ok(t)
	if !strings.Contains(r.stdout, `"kind": "filter"`) {
		t.Fatalf("rules cluster printed %q", r.stdout)
	}
	e.run("", "account-rules", "set", "demo@example.test", "-").failed(t, 1, "homing ctl: -: not JSON (want an array of rules)")
	e.run(`[]`, "account-rules", "set", "demo@example.test", "-").ok(t)
	e.run("", "rules", "set", "cluster").failed(t, 2, "homing ctl: usage: rules [server|cluster] | rules set server|cluster FILE|-")
}
