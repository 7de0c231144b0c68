package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
)

// The routes added after the first version: cluster-wide introspection,
// actions on another member (?node=), rules and partitions.

// populateCluster fills the fake with a cluster of two nodes, every field
// set: "fake" (the node asked) and n2.
func populateCluster(f *admintest.Fake) {
	populate(f)
	f.Lock()
	defer f.Unlock()
	f.NodeList = []admin.NodeInfo{
		{
			Member:       admin.Member{Name: "fake", Roles: []string{"frontend", "backend"}, QueueMode: "locally", State: "alive", SMTP: "127.0.0.1:2525", Admin: "127.0.0.1:8025", Version: "v1", Uptime: "1h"},
			Actors:       map[string]int{"account": 3},
			Activations:  5,
			Passivations: 2,
			Queue:        admin.QueueSummary{Total: 3, Active: 1, Deferred: 1, Held: 1, Oldest: &t0, ByDomain: map[string]int{"remote.test": 2, "(local)": 1}},
			Partitions:   []admin.PartitionStatus{{ID: 0, Open: true, ActiveAccounts: 3}},
			Stats:        admin.Stats{Accepted: 4, Since: t0},
			Error:        "",
		},
		{
			Member: admin.Member{Name: "n2", Roles: []string{"backend"}, QueueMode: "remotely", State: "suspect"},
			Error:  "not reachable: suspect",
		},
	}
	f.QueueList = append(f.QueueList, admin.QueueEntry{
		ID: "R1", Node: "n2", Sender: "c@d.test", State: "held", Received: t0, Size: 10,
		Recipients: []admin.QueueRecipient{{Address: "z@remote.test", State: "held"}},
	})
	f.Journeys = map[string][]admin.JourneyEvent{
		"Q1": {
			{Time: t0, Node: "fake", ID: "Q1", Event: "received", Detail: "smtp from a@b.test"},
			{Time: t1, Node: "n2", ID: "Q1", Event: "delivered", Detail: "demo@example.test"},
		},
		"EMPTY": nil,
	}
	f.PartitionList = []admin.PartitionStatus{{ID: 0, Open: true, ActiveAccounts: 3}, {ID: 4, Open: false, ActiveAccounts: 0}}
	f.RuleSets = map[string]admin.RuleSet{
		"server":                    {Scope: "server", Rules: json.RawMessage(`[{"name":"tag"}]`)},
		"cluster":                   {Scope: "cluster", Version: 7, Rules: json.RawMessage(`[{"name":"scan"}]`)},
		"account:demo@example.test": {Scope: "account", Rules: json.RawMessage(`[{"name":"folder"}]`)},
	}
}

func TestNodesShape(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populateCluster(e.fake)
	ns := e.do("GET", "/api/v1/nodes", "").expect(t, 200).array(t)
	if len(ns) != 2 {
		t.Fatalf("%d nodes", len(ns))
	}
	wantKeys(t, "node", ns[0], "name", "roles", "queueMode", "state", "smtp", "admin", "version", "uptime",
		"actors", "activations", "passivations", "queue", "partitions", "stats")
	wantKeys(t, "node queue", ns[0]["queue"].(map[string]any), "total", "active", "deferred", "held", "oldest", "byDomain")
	wantKeys(t, "node partition", ns[0]["partitions"].([]any)[0].(map[string]any), "id", "open", "activeAccounts")
	wantKeys(t, "node stats", ns[0]["stats"].(map[string]any), "accepted", "deliveredLocal", "relayed", "bounced", "deferred",
		"transferred", "filterRuns", "queueDepth", "storeLatencyP50", "storeLatencyP99", "since")
	if q := ns[0]["queue"].(map[string]any); q["oldest"] != "2025-03-04T05:06:07Z" || q["byDomain"].(map[string]any)["(local)"] != float64(1) {
		t.Errorf("queue summary %v", q)
	}
	// A member that could not be asked: its error, and empty collections
	// that are [] and {}, never null.
	wantKeys(t, "unreachable node", ns[1], "name", "roles", "queueMode", "state", "smtp", "admin",
		"actors", "activations", "passivations", "queue", "partitions", "stats", "error")
	if ns[1]["error"] != "not reachable: suspect" {
		t.Errorf("error %v", ns[1]["error"])
	}
	body := string(e.do("GET", "/api/v1/nodes", "").body)
	for _, frag := range []string{`"partitions":[]`, `"actors":{}`, `"byDomain":{}`} {
		if !strings.Contains(body, frag) {
			t.Errorf("nodes %s: want %s", body, frag)
		}
	}
	if strings.Contains(body, "null") {
		t.Errorf("nodes has a null: %s", body)
	}

	e.fake.Lock()
	e.fake.NodeList = []admin.NodeInfo{{Member: admin.Member{Name: "bare"}}}
	e.fake.Unlock()
	if body := e.do("GET", "/api/v1/nodes", "").expect(t, 200).body; !strings.Contains(string(body), `"roles":[]`) || strings.Contains(string(body), "null") {
		t.Errorf("a node without roles: %s", body)
	}
	e.fake.Lock()
	e.fake.NodeList = nil
	e.fake.Unlock()
	if got := strings.TrimSpace(string(e.do("GET", "/api/v1/nodes", "").expect(t, 200).body)); got != "[]" {
		t.Errorf("no nodes: %s", got)
	}
}

func TestJourney(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populateCluster(e.fake)
	j := e.do("GET", "/api/v1/journey/Q1", "").expect(t, 200).object(t)
	wantKeys(t, "journey", j, "steps")
	var ev []map[string]any
	for _, x := range j["steps"].([]any) {
		ev = append(ev, x.(map[string]any))
	}
	if len(ev) != 2 {
		t.Fatalf("%d events", len(ev))
	}
	wantKeys(t, "journey event", ev[0], "time", "node", "id", "event", "detail")
	if ev[1]["node"] != "n2" || ev[1]["event"] != "delivered" || ev[1]["time"] != "2025-03-04T05:16:07Z" {
		t.Errorf("event %v", ev[1])
	}
	if got := strings.TrimSpace(string(e.do("GET", "/api/v1/journey/EMPTY", "").expect(t, 200).body)); got != `{"steps":[]}` {
		t.Errorf("a journey without events: %s", got)
	}
	msg := e.do("GET", "/api/v1/journey/NOPE", "").expect(t, 404).errorText(t)
	if msg != "message NOPE: not found (no node remembers it)" {
		t.Errorf("404 message %q", msg)
	}
	// An id with a slash (escaped) or a blank cannot be a queue id: 400
	// naming the field, and the API is not asked.
	if r := e.do("GET", "/api/v1/journey/a%2Fb", "").expect(t, 400); !strings.Contains(r.errorText(t), `id "a/b"`) || r.field(t) != "id" {
		t.Errorf("a/b: %s", r.body)
	}
	e.do("GET", "/api/v1/journey/a%20b", "").expect(t, 400)
	var ids []string
	for _, c := range e.fake.CallsTo("Journey") {
		ids = append(ids, c.Args[0].(string))
	}
	if strings.Join(ids, " ") != "Q1 EMPTY NOPE" {
		t.Errorf("ids reaching the API %q", ids)
	}
	e.do("POST", "/api/v1/journey/Q1", "").expect(t, 405)
}

func TestQueueScope(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populateCluster(e.fake)

	q := e.do("GET", "/api/v1/queue?scope=cluster", "").expect(t, 200).array(t)
	if len(q) != 2 || q[0]["node"] != "fake" || q[1]["node"] != "n2" {
		t.Fatalf("cluster queue %v", q)
	}
	wantKeys(t, "cluster queue entry", q[1], "id", "node", "sender", "recipients", "state", "attempts", "received", "size")
	if n := len(e.fake.CallsTo("ClusterQueue")); n != 1 {
		t.Errorf("ClusterQueue called %d times", n)
	}

	for _, scope := range []string{"", "?scope=node"} {
		q = e.do("GET", "/api/v1/queue"+scope, "").expect(t, 200).array(t)
		if len(q) != 1 || q[0]["id"] != "Q1" {
			t.Errorf("queue%s: %v", scope, q)
		}
		if _, ok := q[0]["node"]; ok {
			t.Errorf("queue%s: a node-scope entry names its node", scope)
		}
	}
	if n := len(e.fake.CallsTo("Queue")); n != 2 {
		t.Errorf("Queue called %d times, want 2", n)
	}

	msg := e.do("GET", "/api/v1/queue?scope=everything", "").expect(t, 400).errorText(t)
	if !strings.Contains(msg, "scope must be node or cluster") {
		t.Errorf("bad scope message %q", msg)
	}
	if n := len(e.fake.CallsTo("Queue")) + len(e.fake.CallsTo("ClusterQueue")); n != 3 {
		t.Errorf("a bad scope reached the API")
	}

	// Empty: [] and recipients [], never null.
	e.fake.Lock()
	e.fake.QueueList = []admin.QueueEntry{{ID: "X", Node: "n2"}}
	e.fake.Unlock()
	if body := string(e.do("GET", "/api/v1/queue?scope=cluster", "").expect(t, 200).body); !strings.Contains(body, `"recipients":[]`) {
		t.Errorf("cluster queue %s: recipients should be []", body)
	}
	e.fake.Lock()
	e.fake.QueueList = nil
	e.fake.Unlock()
	if got := strings.TrimSpace(string(e.do("GET", "/api/v1/queue?scope=cluster", "").expect(t, 200).body)); got != "[]" {
		t.Errorf("empty cluster queue %s", got)
	}
}

func TestQueueActionsOnNode(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populateCluster(e.fake)
	for _, action := range []string{"hold", "release", "retry"} {
		r := e.do("POST", "/api/v1/queue/R1/"+action+"?node=n2", "").expect(t, 204)
		if len(r.body) != 0 {
			t.Errorf("%s: body %q", action, r.body)
		}
	}
	// The node's name is a query value: escaped, it arrives whole.
	msg := e.do("POST", "/api/v1/queue/R1/hold?node=be%201%26x", "").expect(t, 404).errorText(t)
	if msg != "no node named be 1&x" {
		t.Errorf("unknown node: %q", msg)
	}
	// A message of another node is not found on n2.
	if msg := e.do("POST", "/api/v1/queue/Q1/hold?node=n2", "").expect(t, 404).errorText(t); msg != "queue Q1: not found" {
		t.Errorf("Q1 on n2: %q", msg)
	}
	e.do("DELETE", "/api/v1/queue/R1?node=n2", "").expect(t, 204)
	e.do("POST", "/api/v1/queue/R1/frobnicate?node=n2", "").expect(t, 404)

	var got []string
	for _, c := range e.fake.CallsTo("NodeQueueAction") {
		got = append(got, fmt.Sprintf("%s/%s/%s", c.Args...))
	}
	want := "n2/R1/hold n2/R1/release n2/R1/retry be 1&x/R1/hold n2/Q1/hold n2/R1/delete"
	if strings.Join(got, " ") != want {
		t.Errorf("NodeQueueAction calls %q, want %q", got, want)
	}
	if n := len(e.fake.CallsTo("QueueAction")); n != 0 {
		t.Errorf("?node= reached QueueAction %d times", n)
	}
	// An empty node is this node.
	e.do("POST", "/api/v1/queue/Q1/hold?node=", "").expect(t, 204)
	if c := e.fake.CallsTo("QueueAction"); len(c) != 1 || c[0].Args[0] != "Q1" {
		t.Errorf("?node= (empty) did not act here: %+v", c)
	}
	e.fake.Lock()
	n := len(e.fake.QueueList)
	e.fake.Unlock()
	if n != 1 {
		t.Errorf("R1 was not deleted on n2: %d entries", n)
	}
}

func TestUpdateSettingsOnNode(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populateCluster(e.fake)
	s := e.do("PUT", "/api/v1/settings?node=n2", `{"queueMode":"locally-for-others"}`).expect(t, 200).object(t)
	wantKeys(t, "settings of n2", s, "queueMode", "name", "roles")
	if s["name"] != "n2" || s["queueMode"] != "locally-for-others" {
		t.Errorf("settings of n2 %v", s)
	}
	calls := e.fake.CallsTo("NodeUpdateSettings")
	if len(calls) != 1 || calls[0].Args[0] != "n2" || *calls[0].Args[1].(admin.SettingsUpdate).QueueMode != "locally-for-others" {
		t.Fatalf("NodeUpdateSettings calls %+v", calls)
	}
	if n := len(e.fake.CallsTo("UpdateSettings")); n != 0 {
		t.Errorf("?node= changed this node")
	}
	if s := e.do("GET", "/api/v1/settings", "").expect(t, 200).object(t); s["queueMode"] != "locally" {
		t.Errorf("this node's mode changed: %v", s)
	}

	e.do("PUT", "/api/v1/settings?node=n9", `{"queueMode":"locally"}`).expect(t, 404).errorText(t)
	for body, want := range map[string]string{
		`{"queueMode":"sometimes"}`: "locally-for-others",
		`{"queueMod":"locally"}`:    `unknown field "queueMod"`,
		`[1]`:                       "invalid JSON",
	} {
		if msg := e.do("PUT", "/api/v1/settings?node=n2", body).expect(t, 400).errorText(t); !strings.Contains(msg, want) {
			t.Errorf("%s: %q, want %q in it", body, msg, want)
		}
	}
	if n := len(e.fake.CallsTo("NodeUpdateSettings")); n != 2 {
		t.Errorf("NodeUpdateSettings called %d times, want 2 (bad bodies are refused first)", n)
	}
	// An answer without roles still has "roles": [].
	e.fake.Lock()
	e.fake.NodeList[1].Roles = nil
	e.fake.Unlock()
	if body := e.do("PUT", "/api/v1/settings?node=n2", `{}`).expect(t, 200).body; !strings.Contains(string(body), `"roles":[]`) {
		t.Errorf("settings %s: roles should be []", body)
	}
}

func TestRulesRoutes(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populateCluster(e.fake)

	rs := e.do("GET", "/api/v1/rules/cluster", "").expect(t, 200).object(t)
	wantKeys(t, "cluster rules", rs, "scope", "version", "rules")
	if rs["version"] != float64(7) || rs["rules"].([]any)[0].(map[string]any)["name"] != "scan" {
		t.Errorf("cluster rules %v", rs)
	}
	rs = e.do("GET", "/api/v1/rules/server", "").expect(t, 200).object(t)
	wantKeys(t, "server rules", rs, "scope", "rules")

	rs = e.do("PUT", "/api/v1/rules/server", `[{"name":"a"},{"name":"b"}]`).expect(t, 200).object(t)
	if rs["scope"] != "server" || len(rs["rules"].([]any)) != 2 {
		t.Errorf("PUT server rules answered %v", rs)
	}
	rs = e.do("PUT", "/api/v1/rules/cluster", `[]`).expect(t, 200).object(t)
	if rs["version"] != float64(8) || len(rs["rules"].([]any)) != 0 {
		t.Errorf("PUT cluster rules answered %v", rs)
	}
	var got []string
	for _, c := range e.fake.CallsTo("SetRules") {
		got = append(got, c.Args[0].(string)+" "+c.Args[1].(string))
	}
	if strings.Join(got, "|") != `server [{"name":"a"},{"name":"b"}]|cluster []` {
		t.Errorf("SetRules calls %q", got)
	}

	// The body is the rule array itself; anything else is refused before
	// the API sees it.
	for body, want := range map[string]string{
		`{"rules":[]}`: "invalid JSON",
		``:             "empty",
		`[{"a":1}] x`:  "invalid JSON",
	} {
		if msg := e.do("PUT", "/api/v1/rules/server", body).expect(t, 400).errorText(t); !strings.Contains(msg, want) {
			t.Errorf("body %q: %q, want %q in it", body, msg, want)
		}
	}
	// The API's own validation comes back as its 400.
	e.fake.SetErr("SetRules", &admin.Error{Status: 400, Message: `rule 1: unknown action "explode"`})
	if msg := e.do("PUT", "/api/v1/rules/server", `[{"actions":[{"kind":"explode"}]}]`).expect(t, 400).errorText(t); msg != `rule 1: unknown action "explode"` {
		t.Errorf("invalid rule: %q", msg)
	}
	e.fake.SetErr("SetRules", nil)

	for _, method := range []string{"GET", "PUT"} {
		msg := e.do(method, "/api/v1/rules/account", `[]`).expect(t, 404).errorText(t)
		if msg != "rule scope must be server or cluster" {
			t.Errorf("%s bad scope: %q", method, msg)
		}
	}
	if n, m := len(e.fake.CallsTo("Rules")), len(e.fake.CallsTo("SetRules")); n != 2 || m != 3 {
		t.Errorf("Rules called %d times (want 2), SetRules %d (want 3): bad requests reached the API", n, m)
	}
	for _, c := range e.fake.CallsTo("Rules") {
		if s := c.Args[0].(string); s != "cluster" && s != "server" {
			t.Errorf("Rules got scope %q", s)
		}
	}
}

// An API that answers no rules at all still gives clients an array, as
// every other empty collection of the API is [] (the handler normalises
// them; it does not do so for RuleSet.Rules, whose nil marshals as null
// and whose empty non-nil value fails to marshal: a 500).
func TestRulesEmptyIsArray(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.fake.Lock()
	e.fake.AccountMap["a@b.test"] = admin.Account{Address: "a@b.test"}
	e.fake.RuleSets = map[string]admin.RuleSet{
		"server":           {Scope: "server"},                            // Rules nil
		"cluster":          {Scope: "cluster", Rules: json.RawMessage{}}, // Rules empty
		"account:a@b.test": {Scope: "account"},                           // Rules nil
	}
	e.fake.Unlock()
	for _, path := range []string{"/api/v1/rules/server", "/api/v1/rules/cluster", "/api/v1/accounts/a@b.test/rules"} {
		r := e.do("GET", path, "")
		body := string(r.body)
		if r.status != 200 || !strings.Contains(body, `"rules":[]`) {
			t.Errorf("GET %s = %d %s: want 200 with rules []", path, r.status, strings.TrimSpace(body))
		}
	}
}

func TestAccountRulesRoutes(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populateCluster(e.fake)
	rs := e.do("GET", "/api/v1/accounts/demo@example.test/rules", "").expect(t, 200).object(t)
	wantKeys(t, "account rules", rs, "scope", "rules")
	if rs["scope"] != "account" || rs["rules"].([]any)[0].(map[string]any)["name"] != "folder" {
		t.Errorf("account rules %v", rs)
	}
	rs = e.do("PUT", "/api/v1/accounts/demo@example.test/rules", `[{"name":"vacation"}]`).expect(t, 200).object(t)
	if rs["rules"].([]any)[0].(map[string]any)["name"] != "vacation" {
		t.Errorf("PUT answered %v", rs)
	}
	c := e.fake.CallsTo("SetAccountRules")
	if len(c) != 1 || c[0].Args[0] != "demo@example.test" || c[0].Args[1] != `[{"name":"vacation"}]` {
		t.Errorf("SetAccountRules calls %+v", c)
	}
	if msg := e.do("GET", "/api/v1/accounts/ghost@example.test/rules", "").expect(t, 404).errorText(t); msg != "account ghost@example.test: not found" {
		t.Errorf("unknown account: %q", msg)
	}
	e.do("PUT", "/api/v1/accounts/ghost@example.test/rules", `[]`).expect(t, 404).errorText(t)
	e.do("PUT", "/api/v1/accounts/demo@example.test/rules", `{"name":"x"}`).expect(t, 400).errorText(t)
	if n := len(e.fake.CallsTo("SetAccountRules")); n != 2 {
		t.Errorf("SetAccountRules called %d times, want 2 (not for the object body)", n)
	}
	// The address reaches the API unescaped.
	e.do("GET", "/api/v1/accounts/demo%40example.test/rules", "").expect(t, 200)
	calls := e.fake.CallsTo("AccountRules")
	if last := calls[len(calls)-1].Args[0]; last != "demo@example.test" {
		t.Errorf("escaped address reached the API as %v", last)
	}
}

func TestPartitionsRoute(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populateCluster(e.fake)
	ps := e.do("GET", "/api/v1/partitions", "").expect(t, 200).array(t)
	if len(ps) != 2 || ps[1]["id"] != float64(4) || ps[1]["open"] != false {
		t.Fatalf("partitions %v", ps)
	}
	wantKeys(t, "partition status", ps[0], "id", "open", "activeAccounts")
	e.fake.Lock()
	e.fake.PartitionList = nil
	e.fake.Unlock()
	if got := strings.TrimSpace(string(e.do("GET", "/api/v1/partitions", "").expect(t, 200).body)); got != "[]" {
		t.Errorf("no partitions: %s", got)
	}
	e.do("PUT", "/api/v1/partitions", "[]").expect(t, 405)
}

// Every new route needs the token; the read-only token reads and never
// changes anything.
func TestTokensOnNewRoutes(t *testing.T) {
	e := newEnv(t, admin.Options{Token: "admin-tok", ReadOnlyToken: "ro-tok"})
	populateCluster(e.fake)
	reads := []string{
		"/api/v1/nodes", "/api/v1/journey/Q1", "/api/v1/queue?scope=cluster", "/api/v1/rules/server",
		"/api/v1/rules/cluster", "/api/v1/accounts/demo@example.test/rules", "/api/v1/partitions",
	}
	writes := []struct{ method, path, body string }{
		{"POST", "/api/v1/queue/R1/hold?node=n2", ""},
		{"POST", "/api/v1/queue/R1/release?node=n2", ""},
		{"POST", "/api/v1/queue/R1/retry?node=n2", ""},
		{"DELETE", "/api/v1/queue/R1?node=n2", ""},
		{"PUT", "/api/v1/settings?node=n2", `{"queueMode":"locally"}`},
		{"PUT", "/api/v1/rules/server", `[]`},
		{"PUT", "/api/v1/rules/cluster", `[]`},
		{"PUT", "/api/v1/accounts/demo@example.test/rules", `[]`},
	}
	for _, p := range reads {
		e.do("GET", p, "").expect(t, 401).errorText(t)
		e.do("GET", p, "", "Authorization: Bearer wrong").expect(t, 401)
		e.do("GET", p, "", "Authorization: Bearer ro-tok").expect(t, 200)
	}
	for _, w := range writes {
		e.do(w.method, w.path, w.body).expect(t, 401).errorText(t)
		if msg := e.do(w.method, w.path, w.body, "Authorization: Bearer ro-tok").expect(t, 403).errorText(t); !strings.Contains(msg, "read-only") {
			t.Errorf("%s %s with the read-only token: %q", w.method, w.path, msg)
		}
	}
	for _, m := range []string{"NodeQueueAction", "NodeUpdateSettings", "SetRules", "SetAccountRules"} {
		if n := len(e.fake.CallsTo(m)); n != 0 {
			t.Errorf("%s reached %d times without the admin token", m, n)
		}
	}
	// With the admin token every one goes through (the delete of R1 comes
	// after the other actions on it).
	for _, w := range writes {
		status := 204
		if w.method == "PUT" {
			status = 200
		}
		e.do(w.method, w.path, w.body, "Authorization: Bearer admin-tok").expect(t, status)
	}
}

// Each new client method goes over HTTP to the handler and back.
func TestClientRoundTripNewRoutes(t *testing.T) {
	e := newEnv(t, admin.Options{Token: "tok"})
	populateCluster(e.fake)
	c := e.client("tok")
	ctx := context.Background()
	f := e.fake

	ns, err := c.Nodes(ctx)
	f.Lock()
	wantNodes := append([]admin.NodeInfo(nil), f.NodeList...)
	f.Unlock()
	// The handler answers [] and {} for the unreachable node's nil
	// collections.
	wantNodes[1].Actors, wantNodes[1].Partitions, wantNodes[1].Queue.ByDomain = map[string]int{}, []admin.PartitionStatus{}, map[string]int{}
	if err != nil || !reflect.DeepEqual(ns, wantNodes) {
		t.Errorf("Nodes = %+v, %v\nwant %+v", ns, err, wantNodes)
	}

	q, err := c.ClusterQueue(ctx)
	if err != nil || len(q) != 2 || q[0].Node != "fake" || q[1].Node != "n2" || q[1].Recipients[0].Address != "z@remote.test" {
		t.Errorf("ClusterQueue = %+v, %v", q, err)
	}

	ev, err := c.Journey(ctx, "Q1")
	if err != nil || !reflect.DeepEqual(ev, f.Journeys["Q1"]) {
		t.Errorf("Journey = %+v, %v", ev, err)
	}
	var ae *admin.Error
	if _, err := c.Journey(ctx, "NOPE"); !asStatus(err, &ae, 404) {
		t.Errorf("Journey of an unknown id: %#v", err)
	}

	for _, action := range []string{"hold", "release", "retry", "delete"} {
		if err := c.NodeQueueAction(ctx, "n2", "R1", action); err != nil {
			t.Errorf("NodeQueueAction %s: %v", action, err)
		}
	}
	if err := c.NodeQueueAction(ctx, "n 9", "R1", "hold"); !asStatus(err, &ae, 404) || ae.Message != "no node named n 9" {
		t.Errorf("NodeQueueAction on an unknown node: %#v", err)
	}
	var acts []string
	for _, call := range f.CallsTo("NodeQueueAction") {
		acts = append(acts, fmt.Sprintf("%s/%s/%s", call.Args...))
	}
	if strings.Join(acts, " ") != "n2/R1/hold n2/R1/release n2/R1/retry n2/R1/delete n 9/R1/hold" {
		t.Errorf("NodeQueueAction calls %q", acts)
	}

	mode := admin.QueueModeRemotely
	s, err := c.NodeUpdateSettings(ctx, "n2", admin.SettingsUpdate{QueueMode: &mode})
	if err != nil || s.Name != "n2" || s.QueueMode != mode || !reflect.DeepEqual(s.Roles, []string{"backend"}) {
		t.Errorf("NodeUpdateSettings = %+v, %v", s, err)
	}

	rs, err := c.Rules(ctx, "cluster")
	if err != nil || rs.Scope != "cluster" || rs.Version != 7 || string(rs.Rules) != `[{"name":"scan"}]` {
		t.Errorf("Rules = %+v (%s), %v", rs, rs.Rules, err)
	}
	rs, err = c.SetRules(ctx, "cluster", json.RawMessage(`[{"name":"new"}]`))
	if err != nil || rs.Version != 8 || string(rs.Rules) != `[{"name":"new"}]` {
		t.Errorf("SetRules = %+v (%s), %v", rs, rs.Rules, err)
	}
	if _, err := c.Rules(ctx, "bogus"); !asStatus(err, &ae, 404) {
		t.Errorf("Rules of a bad scope: %#v", err)
	}
	rs, err = c.AccountRules(ctx, "demo@example.test")
	if err != nil || rs.Scope != "account" || string(rs.Rules) != `[{"name":"folder"}]` {
		t.Errorf("AccountRules = %+v (%s), %v", rs, rs.Rules, err)
	}
	rs, err = c.SetAccountRules(ctx, "demo@example.test", json.RawMessage(`[]`))
	if err != nil || string(rs.Rules) != `[]` {
		t.Errorf("SetAccountRules = %+v (%s), %v", rs, rs.Rules, err)
	}
	if _, err := c.SetAccountRules(ctx, "ghost@example.test", json.RawMessage(`[]`)); !asStatus(err, &ae, 404) {
		t.Errorf("SetAccountRules of an unknown account: %#v", err)
	}

	ps, err := c.Partitions(ctx)
	if err != nil || !reflect.DeepEqual(ps, f.PartitionList) {
		t.Errorf("Partitions = %+v, %v", ps, err)
	}
}

// asStatus reports whether err is an *admin.Error with the status,
// leaving it in *ae.
func asStatus(err error, ae **admin.Error, status int) bool {
	return err != nil && errors.As(err, ae) && (*ae).Status == status
}

// GET /api/v1/nodes gives the node a few seconds: a member that has not
// answered by then is listed as unreachable instead of holding the answer
// for the channel's request timeout.
func TestNodesAreAskedWithADeadline(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populateCluster(e.fake)
	e.do("GET", "/api/v1/nodes", "").expect(t, 200)
	e.fake.Lock()
	dl := e.fake.NodesDeadline
	e.fake.Unlock()
	if dl <= 0 || dl > 3*time.Second {
		t.Fatalf("Nodes was asked with %v left, want a deadline of at most 3s", dl)
	}
}
