package ctl

import (
	"encoding/json"
	"testing"

	"github.com/homing-mail/homing/admin"
)

func TestSettings(t *testing.T) {
	e := newTestEnv(t, "")
	out := e.run("", "settings").ok(t).stdout
	row(t, out, "queue", "mode:", "locally")
	row(t, out, "roles:", "frontend,backend")

	out = e.run("", "settings", "set", "queue-mode", "remotely").ok(t).stdout
	row(t, out, "queue", "mode:", "remotely")
	calls := e.fake.CallsTo("UpdateSettings")
	if len(calls) != 1 || *calls[0].Args[0].(admin.SettingsUpdate).QueueMode != "remotely" {
		t.Errorf("UpdateSettings calls %+v", calls)
	}
	var s admin.Settings
	if err := json.Unmarshal([]byte(e.run("", "--json", "settings").ok(t).stdout), &s); err != nil || s.QueueMode != "remotely" {
		t.Errorf("--json settings %+v %v", s, err)
	}

	e.run("", "settings", "set", "queue-mode", "sometimes").failed(t, 2, `homing ctl: queue mode "sometimes": must be locally, locally-for-others or remotely`)
	e.run("", "settings", "set", "colour", "blue").failed(t, 2, `homing ctl: unknown setting "colour" (queue-mode)`)
	if n := len(e.fake.CallsTo("UpdateSettings")); n != 1 {
		t.Errorf("invalid settings reached the API")
	}
}

func TestSettingsSetNode(t *testing.T) {
	e := newTestEnv(t, "tok")
	fillClusterQueue(e.fake)
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
