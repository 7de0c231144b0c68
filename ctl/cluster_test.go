package ctl

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
)

func TestCluster(t *testing.T) {
	e := newTestEnv(t, "")
	out := e.run("", "cluster").ok(t).stdout
	row(t, out, "NAME", "ROLES", "QUEUE", "MODE", "STATE", "SMTP", "ADMIN", "VERSION", "UPTIME")
	row(t, out, "n1", "frontend,backend", "locally", "alive", "127.0.0.1:2525", "127.0.0.1:8025", "v1", "1h0m0s")
	row(t, out, "n2", "backend", "locally-for-others", "suspect", "127.0.0.2:2525", "127.0.0.2:8025", "-", "-")
	aligned(t, out, "NAME", 2)
	row(t, out, "n1", "5", "0-3,5")
	row(t, out, "n2", "3", "4,6-7")
	row(t, out, "(none)", "1", "8")

	js := e.run("", "--json", "cluster").ok(t).stdout
	var got admin.Cluster
	if err := json.Unmarshal([]byte(js), &got); err != nil || !reflect.DeepEqual(got, e.fake.ClusterInfo) {
		t.Errorf("--json cluster = %+v, %v", got, err)
	}
	if !strings.Contains(js, "\n  \"members\": [") {
		t.Errorf("--json output is not indented:\n%s", js)
	}
}

func TestRanges(t *testing.T) {
	for want, ids := range map[string][]int{
		"":               nil,
		"7":              {7},
		"0-3,7,9-12":     {0, 1, 2, 3, 7, 9, 10, 11, 12},
		"1,3,5":          {1, 3, 5},
		"0-1":            {0, 1},
		"0-63":           seq(64),
		"2-4,10,100-101": {2, 3, 4, 10, 100, 101},
	} {
		if got := ranges(ids); got != want {
			t.Errorf("ranges(%v) = %q, want %q", ids, got, want)
		}
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// clusterNodes is a cluster of three seen from n1: n2 is busy, n3 dead.
func clusterNodes(oldest time.Time) []admin.NodeInfo {
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

func TestNodes(t *testing.T) {
	e := newTestEnv(t, "tok")
	// 90.5 minutes ago: "1h30m" whatever the test's own speed.
	oldest := time.Now().Add(-90*time.Minute - 30*time.Second).UTC()
	e.fake.Lock()
	e.fake.NodeList = clusterNodes(oldest)
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
	e.run("", "nodes").failed(t, 1, "homing ctl: nodes: internal error (the node's log has the detail)")
}

// A member that gossip calls alive but that did not answer the node asked
// is marked unreachable, in words, without protoactor's "future: timeout";
// --json keeps the API's state and error.
func TestNodesUnreachable(t *testing.T) {
	e := newTestEnv(t, "")
	ns := clusterNodes(time.Now())
	ns[1] = admin.NodeInfo{Member: admin.Member{Name: "n2", Roles: []string{"backend"}, QueueMode: "remotely", State: "alive"},
		Error: "temporarily unavailable: n2 did not answer: future: timeout"}
	e.fake.Lock()
	e.fake.NodeList = ns
	e.fake.Unlock()
	out := e.run("", "nodes").ok(t).stdout
	row(t, out, "n2", "backend", "remotely", "unreachable", "0/0/0", "-", "0/0", "0", "no", "answer", "in", "time", "(frozen,", "overloaded", "or", "cut", "off?)")
	row(t, out, "n3", "backend", "locally", "dead", "0/0/0", "-", "0/0", "0", "not", "reachable:", "dead")
	if strings.Contains(out, "future") || strings.Contains(out, "temporarily unavailable") {
		t.Errorf("internal words in\n%s", out)
	}
	var got []admin.NodeInfo
	if err := json.Unmarshal([]byte(e.run("", "nodes", "--json").ok(t).stdout), &got); err != nil || got[1].State != "alive" || got[1].Error == "" {
		t.Errorf("--json nodes: %+v %v", got, err)
	}
}

// `ready` shows each check; exit 0 when ready, 1 when not.
func TestReady(t *testing.T) {
	e := newTestEnv(t, "tok")
	out := e.run("", "ready").ok(t).stdout
	row(t, out, "ready")
	row(t, out, "stores", "ok", "open")
	e.fake.Lock()
	e.fake.Ready = admin.Readiness{Checks: []admin.Check{{Name: "queue", OK: true, Detail: "open"},
		{Name: "partitions", Detail: "failed to open: partition 3 (damaged)"}}}
	e.fake.Unlock()
	r := e.run("", "ready")
	if r.code != 1 || r.stderr != "" {
		t.Fatalf("not ready: exit %d, stderr %q", r.code, r.stderr)
	}
	row(t, r.stdout, "not", "ready")
	row(t, r.stdout, "partitions", "FAIL", "failed", "to", "open:", "partition", "3", "(damaged)")
	var got admin.Readiness
	r = e.run("", "ready", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 1 || got.Ready || len(got.Checks) != 2 || got.Checks[1].Detail == "" {
		t.Errorf("--json ready: exit %d %+v %v", r.code, got, err)
	}
}
