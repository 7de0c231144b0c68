package console

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
)

// consoleAPI is the admin API the console is tested against: admintest's
// Fake holding a canned cluster, served by the real admin handler (so the
// console meets the node's routes, JSON, tokens and errors), with every
// request recorded on the way in. Every field of the Fake may be changed
// by a test while the browser polls, under the Fake's lock (the helpers
// below take it).
type consoleAPI struct {
	*admintest.Fake
	token    string // when set, every request needs "Bearer token" (or readOnly)
	readOnly string // a token that may read, and gets 403 on changes

	once    sync.Once
	handler http.Handler // admin.NewHandler over the Fake, made on first use

	mu    sync.Mutex
	calls []string // every request that changes state, "METHOD /path?query body"
	auth  []string // the Authorization headers seen, in order
}

// Fixed times keep the fake's answers equal between polls, as a quiet
// cluster's would be.
var (
	fakeT0   = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	fakeNext = fakeT0.Add(15 * time.Minute)
)

// Queue ids of the canned queue.
const (
	idDeferred = "Q1a2b3c4d" // on fe1, deferred
	idActive   = "Q5e6f7a8b" // on be2, active, from the null sender
)

// newFakeAPI returns a canned cluster, as seen from frontend fe1: fe1 and
// backends be1 and be2 with eight partitions (be1: 0 3 5 6, with 5 not
// open; be2: 1 2 4 7), a queue of two entries, the journey of idDeferred
// and one account. Releasing a held entry makes it deferred again.
func newFakeAPI() *consoleAPI {
	f := admintest.NewFake()
	f.Current = admin.Settings{Name: "fe1", QueueMode: "locally-for-others", Roles: []string{"frontend"}}
	f.StateAfter = map[string]string{admin.ActionRelease: "deferred"}
	f.ClusterInfo.Members = []admin.Member{
		{Name: "fe1", Roles: []string{"frontend"}, QueueMode: "locally-for-others", State: "alive",
			SMTP: "127.0.0.1:2525", Admin: "127.0.0.1:8025", Version: "0.5.0", Uptime: "3h12m"},
		{Name: "be1", Roles: []string{"backend"}, QueueMode: "locally", State: "alive",
			SMTP: "127.0.0.1:2526", Admin: "127.0.0.1:8026", Version: "0.5.0", Uptime: "3h11m"},
		{Name: "be2", Roles: []string{"backend"}, QueueMode: "remotely", State: "alive",
			SMTP: "127.0.0.1:2527", Admin: "127.0.0.1:8027", Version: "0.5.0", Uptime: "3h11m"},
	}
	for id, owner := range []string{"be1", "be2", "be2", "be1", "be2", "be1", "be1", "be2"} {
		f.ClusterInfo.Partitions = append(f.ClusterInfo.Partitions, admin.Partition{ID: id, Owner: owner})
	}
	member := func(i int) admin.Member {
		m := f.ClusterInfo.Members[i]
		return admin.Member{Name: m.Name, Roles: m.Roles, QueueMode: m.QueueMode, State: m.State}
	}
	f.NodeList = []admin.NodeInfo{
		{Member: member(0), Actors: map[string]int{"queue": 1},
			Queue: admin.QueueSummary{Total: 1, Deferred: 1}, Partitions: []admin.PartitionStatus{}},
		{Member: member(1), Actors: map[string]int{"account": 1},
			Partitions: []admin.PartitionStatus{
				{ID: 0, Open: true}, {ID: 3, Open: true, ActiveAccounts: 1}, {ID: 5, Open: false}, {ID: 6, Open: true}}},
		{Member: member(2), Actors: map[string]int{"queue": 1},
			Queue: admin.QueueSummary{Total: 1, Active: 1}, Partitions: []admin.PartitionStatus{
				{ID: 1, Open: true}, {ID: 2, Open: true}, {ID: 4, Open: true}, {ID: 7, Open: true}}},
	}
	next := fakeNext
	f.QueueList = []admin.QueueEntry{
		{ID: idDeferred, Sender: "alice@example.net", State: "deferred", Attempts: 2, NextAttempt: &next,
			LastError: "451 4.4.3 partition 3 has no owner yet", Received: fakeT0, Size: 2048, Node: "fe1",
			Recipients: []admin.QueueRecipient{{Address: "bob@example.test", State: "deferred", Attempts: 2,
				NextAttempt: &next, LastError: "451 4.4.3 partition 3 has no owner yet"}}},
		{ID: idActive, Sender: "", State: "active", Received: fakeT0.Add(time.Minute), Size: 900, Node: "be2",
			Recipients: []admin.QueueRecipient{{Address: "carol@remote.example", State: "active"}}},
	}
	// Out of order on purpose: the console sorts by time.
	f.Journeys = map[string][]admin.JourneyEvent{idDeferred: {
		{Time: fakeT0.Add(120 * time.Millisecond), Node: "be1", ID: idDeferred, Event: "delivered", Detail: "bob@example.test, partition 3"},
		{Time: fakeT0, Node: "fe1", ID: idDeferred, Event: "received", Detail: "SMTP from 127.0.0.1, alice@example.net"},
		{Time: fakeT0.Add(40 * time.Millisecond), Node: "fe1", ID: idDeferred, Event: "filtered", Detail: "example filter: OK"},
		{Time: fakeT0.Add(5 * time.Millisecond), Node: "fe1", ID: idDeferred, Event: "queued"},
	}}
	f.AccountMap["bob@example.test"] = admin.Account{Address: "bob@example.test", QuotaBytes: 10 << 20,
		UsedBytes: 5 << 10, Messages: 2, Created: fakeT0.Add(-48 * time.Hour), Partition: 3, Owner: "be1"}
	f.Mailboxes["bob@example.test"] = []admin.Message{
		{ID: "1", Folder: "INBOX", Size: 2100, Received: fakeT0.Add(-time.Hour), From: "alice@example.net", Subject: "Lunch on Friday?"},
		{ID: "2", Folder: "Archive", Size: 3020, Received: fakeT0.Add(-30 * time.Minute), Flags: []string{`\Seen`}, From: "dave@example.org", Subject: "Minutes of the meeting"},
	}
	// Two hours of minutes on each node, for the charts of the last 24
	// hours.
	now := time.Now().UTC().Truncate(time.Minute)
	for k, name := range []string{"fe1", "be1", "be2"} {
		h := admin.NodeHistory{Node: name}
		for i := 120; i >= 0; i-- {
			m := admin.Minute{Time: now.Add(-time.Duration(i) * time.Minute), Queue: int64((i*7+k*13)%23 + k)}
			if k == 0 {
				m.In, m.Relayed, m.Deferred = int64(40+i%17), int64(10+i%5), int64(i%3)
			} else {
				m.Delivered = int64(15 + (i+k)%11)
			}
			h.Minutes = append(h.Minutes, m)
		}
		f.HistoryData = append(f.HistoryData, h)
	}
	f.DomainList = []admin.Domain{{Domain: "example.test", State: "active"}, {Domain: "example.org", State: "active"}}
	f.AliasMap = map[string]string{"postmaster@example.test": "bob@example.test", "*@example.org": "bob@example.test"}
	for i, l := range []string{
		idDeferred + ": from=<alice@example.net>, size=2048, nrcpt=1, client=[127.0.0.1], source=smtp, status=queued",
		idDeferred + ": to=<bob@example.test>, relay=none, delay=0.05, dsn=4.4.3, status=deferred (451 4.4.3 partition 3 has no owner yet)",
		"NOQUEUE: reject: RCPT from [192.0.2.7]: 550 5.1.1 No such user here; from=<x@spam.example> to=<nobody@example.test> via=smtp helo=<spam.example>",
	} {
		f.LogLines = append(f.LogLines, admin.LogLine{Node: "fe1", Seq: int64(i + 1), Time: fakeT0.Add(time.Duration(i) * time.Second),
			Event: []string{"queued", "delivery", "reject"}[i], Line: l})
	}
	return &consoleAPI{Fake: f}
}

// ServeHTTP records the request and answers it with the admin handler.
func (a *consoleAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.once.Do(func() {
		a.handler = admin.NewHandler(a.Fake, admin.Options{Token: a.token, ReadOnlyToken: a.readOnly})
	})
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	a.mu.Lock()
	a.auth = append(a.auth, r.Header.Get("Authorization"))
	a.mu.Unlock()
	// A call that changes state is recorded once the handler has applied
	// it, so a test that waits for the call finds its effect too.
	a.handler.ServeHTTP(w, r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		call := r.Method + " " + r.URL.RequestURI()
		if len(body) > 0 {
			call += " " + string(body)
		}
		a.mu.Lock()
		a.calls = append(a.calls, call)
		a.mu.Unlock()
	}
}

// killBackend marks a backend dead, as gossip reports a crash: its
// partitions move to the surviving backend be1 (not open there yet) and
// the node no longer answers for its details.
func (a *consoleAPI) killBackend(name string) {
	a.Lock()
	defer a.Unlock()
	for i := range a.ClusterInfo.Members {
		if a.ClusterInfo.Members[i].Name == name {
			a.ClusterInfo.Members[i].State = "dead"
		}
	}
	var moved []admin.PartitionStatus
	for i := range a.ClusterInfo.Partitions {
		if p := &a.ClusterInfo.Partitions[i]; p.Owner == name {
			p.Owner = "be1"
			moved = append(moved, admin.PartitionStatus{ID: p.ID})
		}
	}
	for i := range a.NodeList {
		n := &a.NodeList[i]
		switch n.Name {
		case name:
			*n = admin.NodeInfo{Member: admin.Member{Name: name, Roles: n.Roles, QueueMode: n.QueueMode, State: "dead"},
				Partitions: []admin.PartitionStatus{}, Error: "no answer within 2s"}
		case "be1":
			n.Partitions = append(n.Partitions, moved...)
			sort.Slice(n.Partitions, func(x, y int) bool { return n.Partitions[x].ID < n.Partitions[y].ID })
		}
	}
}

// setDepth sets the queue depth a node reports.
func (a *consoleAPI) setDepth(name string, total int) {
	a.Lock()
	defer a.Unlock()
	for i := range a.NodeList {
		if a.NodeList[i].Name == name {
			a.NodeList[i].Queue.Total = total
		}
	}
}

// callsWith returns the recorded state-changing requests that start with prefix.
func (a *consoleAPI) callsWith(prefix string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, c := range a.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// memberMode returns the queue mode the cluster view shows for a member.
func (a *consoleAPI) memberMode(name string) string {
	a.Lock()
	defer a.Unlock()
	for _, m := range a.ClusterInfo.Members {
		if m.Name == name {
			return m.QueueMode
		}
	}
	return ""
}

// authSeen returns the Authorization headers of every request so far.
func (a *consoleAPI) authSeen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.auth)
}

// setBroken makes GET /api/v1/cluster fail with a 500 (or work again).
func (a *consoleAPI) setBroken(broken bool) {
	var err error
	if broken {
		err = &admin.Error{Status: http.StatusInternalServerError, Message: "cluster view timed out"}
	}
	a.SetErr("Cluster", err)
}
