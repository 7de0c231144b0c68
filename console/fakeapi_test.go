package console

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// The fake admin API the console is tested against. Its JSON follows the
// types of package admin (Cluster, NodeInfo, QueueEntry, JourneyEvent,
// Account, Message), written out here so that the console's tests do not
// depend on that package. A node that could not be asked is in
// GET /api/v1/nodes with "error" set and a zero queue summary.

type fakeMember struct {
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	QueueMode string   `json:"queueMode"`
	State     string   `json:"state"`
	SMTP      string   `json:"smtp"`
	Admin     string   `json:"admin"`
	Version   string   `json:"version,omitempty"`
	Uptime    string   `json:"uptime,omitempty"`
}

type fakePartition struct {
	ID    int    `json:"id"`
	Owner string `json:"owner"`
}

type fakePartitionStatus struct {
	ID             int  `json:"id"`
	Open           bool `json:"open"`
	ActiveAccounts int  `json:"activeAccounts"`
}

type fakeQueueDepth struct {
	Total    int `json:"total"`
	Active   int `json:"active"`
	Deferred int `json:"deferred"`
	Held     int `json:"held"`
}

type fakeNode struct {
	Name       string                `json:"name"`
	Roles      []string              `json:"roles"`
	State      string                `json:"state"`
	Actors     map[string]int        `json:"actors"`
	Queue      fakeQueueDepth        `json:"queue"`
	Partitions []fakePartitionStatus `json:"partitions"`
	Error      string                `json:"error,omitempty"`
}

type fakeRecipient struct {
	Address     string     `json:"address"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	NextAttempt *time.Time `json:"nextAttempt,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
}

type fakeEntry struct {
	ID          string          `json:"id"`
	Sender      string          `json:"sender"`
	Recipients  []fakeRecipient `json:"recipients"`
	State       string          `json:"state"`
	Attempts    int             `json:"attempts"`
	NextAttempt *time.Time      `json:"nextAttempt,omitempty"`
	LastError   string          `json:"lastError,omitempty"`
	Received    time.Time       `json:"received"`
	Size        int64           `json:"size"`
	Node        string          `json:"node"`
}

type fakeEvent struct {
	Time   time.Time `json:"time"`
	Node   string    `json:"node"`
	Event  string    `json:"event"`
	Detail string    `json:"detail,omitempty"`
}

type fakeAccount struct {
	Address    string    `json:"address"`
	QuotaBytes int64     `json:"quotaBytes"`
	UsedBytes  int64     `json:"usedBytes"`
	Messages   int       `json:"messages"`
	Created    time.Time `json:"created"`
	Partition  int       `json:"partition"`
	Owner      string    `json:"owner,omitempty"`
}

type fakeMessage struct {
	ID       string    `json:"id"`
	Folder   string    `json:"folder"`
	Size     int64     `json:"size"`
	Received time.Time `json:"received"`
	From     string    `json:"from,omitempty"`
	Subject  string    `json:"subject,omitempty"`
}

// fakeAPI is an in-memory admin API. Every field behind mu may be changed
// by a test while the browser polls; calls records every request that
// changes state, as "METHOD /path?query body".
type fakeAPI struct {
	token    string // when set, every request needs "Bearer token" (or readOnly)
	readOnly string // a token that may read, and gets 403 on changes

	mu         sync.Mutex
	members    []fakeMember
	partitions []fakePartition
	nodes      []fakeNode
	queue      []fakeEntry
	journeys   map[string][]fakeEvent
	accounts   map[string]fakeAccount
	messages   map[string][]fakeMessage
	calls      []string
	auth       []string // Authorization headers seen, in order
	broken     bool     // GET /api/v1/cluster answers 500
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

// newFakeAPI returns a canned cluster: frontend fe1 and backends be1 and
// be2 with eight partitions (be1: 0 3 5 6, with 5 not open; be2: 1 2 4 7),
// a queue of two entries, the journey of idDeferred and one account.
func newFakeAPI() *fakeAPI {
	f := &fakeAPI{
		members: []fakeMember{
			{Name: "fe1", Roles: []string{"frontend"}, QueueMode: "locally-for-others", State: "alive",
				SMTP: "127.0.0.1:2525", Admin: "127.0.0.1:8025", Version: "0.5.0", Uptime: "3h12m"},
			{Name: "be1", Roles: []string{"backend"}, QueueMode: "locally", State: "alive",
				SMTP: "127.0.0.1:2526", Admin: "127.0.0.1:8026", Version: "0.5.0", Uptime: "3h11m"},
			{Name: "be2", Roles: []string{"backend"}, QueueMode: "remotely", State: "alive",
				SMTP: "127.0.0.1:2527", Admin: "127.0.0.1:8027", Version: "0.5.0", Uptime: "3h11m"},
		},
		journeys: map[string][]fakeEvent{},
		accounts: map[string]fakeAccount{},
		messages: map[string][]fakeMessage{},
	}
	for id, owner := range []string{"be1", "be2", "be2", "be1", "be2", "be1", "be1", "be2"} {
		f.partitions = append(f.partitions, fakePartition{ID: id, Owner: owner})
	}
	f.nodes = []fakeNode{
		{Name: "fe1", Roles: []string{"frontend"}, State: "alive", Actors: map[string]int{"queue": 1},
			Queue: fakeQueueDepth{Total: 1, Deferred: 1}, Partitions: []fakePartitionStatus{}},
		{Name: "be1", Roles: []string{"backend"}, State: "alive", Actors: map[string]int{"account": 1},
			Partitions: []fakePartitionStatus{
				{ID: 0, Open: true}, {ID: 3, Open: true, ActiveAccounts: 1}, {ID: 5, Open: false}, {ID: 6, Open: true}}},
		{Name: "be2", Roles: []string{"backend"}, State: "alive", Actors: map[string]int{"queue": 1},
			Queue: fakeQueueDepth{Total: 1, Active: 1}, Partitions: []fakePartitionStatus{
				{ID: 1, Open: true}, {ID: 2, Open: true}, {ID: 4, Open: true}, {ID: 7, Open: true}}},
	}
	next := fakeNext
	f.queue = []fakeEntry{
		{ID: idDeferred, Sender: "alice@example.net", State: "deferred", Attempts: 2, NextAttempt: &next,
			LastError: "451 4.4.3 partition 3 has no owner yet", Received: fakeT0, Size: 2048, Node: "fe1",
			Recipients: []fakeRecipient{{Address: "bob@example.test", State: "deferred", Attempts: 2,
				NextAttempt: &next, LastError: "451 4.4.3 partition 3 has no owner yet"}}},
		{ID: idActive, Sender: "", State: "active", Received: fakeT0.Add(time.Minute), Size: 900, Node: "be2",
			Recipients: []fakeRecipient{{Address: "carol@remote.example", State: "active"}}},
	}
	// Out of order on purpose: the console sorts by time.
	f.journeys[idDeferred] = []fakeEvent{
		{Time: fakeT0.Add(120 * time.Millisecond), Node: "be1", Event: "delivered", Detail: "bob@example.test, partition 3"},
		{Time: fakeT0, Node: "fe1", Event: "received", Detail: "SMTP from 127.0.0.1, alice@example.net"},
		{Time: fakeT0.Add(40 * time.Millisecond), Node: "fe1", Event: "filtered", Detail: "example filter: OK"},
		{Time: fakeT0.Add(5 * time.Millisecond), Node: "fe1", Event: "queued"},
	}
	f.accounts["bob@example.test"] = fakeAccount{Address: "bob@example.test", QuotaBytes: 10 << 20,
		UsedBytes: 5 << 10, Messages: 2, Created: fakeT0.Add(-48 * time.Hour), Partition: 3, Owner: "be1"}
	f.messages["bob@example.test"] = []fakeMessage{
		{ID: "1", Folder: "INBOX", Size: 2100, Received: fakeT0.Add(-time.Hour), From: "alice@example.net", Subject: "Lunch on Friday?"},
		{ID: "2", Folder: "Archive", Size: 3020, Received: fakeT0.Add(-30 * time.Minute), From: "dave@example.org", Subject: "Minutes of the meeting"},
	}
	return f
}

// ServeHTTP answers /api/v1/... like a node's admin endpoint.
func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	authz := r.Header.Get("Authorization")
	f.mu.Lock()
	f.auth = append(f.auth, authz)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		call := r.Method + " " + r.URL.RequestURI()
		if len(body) > 0 {
			call += " " + string(body)
		}
		f.calls = append(f.calls, call)
	}
	f.mu.Unlock()

	if f.token != "" {
		switch authz {
		case "Bearer " + f.token:
		case "Bearer " + f.readOnly:
			if f.readOnly == "" {
				unauthorized(w)
				return
			}
			if r.Method != http.MethodGet {
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "this token is read-only"})
				return
			}
		default:
			unauthorized(w)
			return
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cluster", f.cluster)
	mux.HandleFunc("GET /api/v1/nodes", f.nodeList)
	mux.HandleFunc("GET /api/v1/settings", f.settings)
	mux.HandleFunc("PUT /api/v1/settings", func(w http.ResponseWriter, r *http.Request) { f.putSettings(w, r, body) })
	mux.HandleFunc("GET /api/v1/queue", f.queueList)
	mux.HandleFunc("POST /api/v1/queue/{id}/{action}", f.queueAction)
	mux.HandleFunc("DELETE /api/v1/queue/{id}", f.queueAction)
	mux.HandleFunc("GET /api/v1/journey/{id}", f.journey)
	mux.HandleFunc("GET /api/v1/accounts/{address}", f.account)
	mux.HandleFunc("GET /api/v1/accounts/{address}/messages", f.accountMessages)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint: " + r.URL.Path})
	})
	mux.ServeHTTP(w, r)
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="homing"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a bearer token is required"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAPI) cluster(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "cluster view timed out"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": f.members, "partitions": f.partitions})
}

func (f *fakeAPI) nodeList(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, http.StatusOK, f.nodes)
}

func (f *fakeAPI) settings(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"name": "fe1", "queueMode": "locally-for-others", "roles": []string{"frontend"}})
}

func (f *fakeAPI) putSettings(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		QueueMode string `json:"queueMode"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON: " + err.Error()})
		return
	}
	if !slices.Contains([]string{"locally", "locally-for-others", "remotely"}, req.QueueMode) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unknown queue mode " + req.QueueMode})
		return
	}
	node := r.URL.Query().Get("node")
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.members {
		if f.members[i].Name == node {
			f.members[i].QueueMode = req.QueueMode
			writeJSON(w, http.StatusOK, map[string]any{"name": node, "queueMode": req.QueueMode})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such member: " + node})
}

func (f *fakeAPI) queueList(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("scope") != "cluster" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the console must ask for scope=cluster"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, http.StatusOK, f.queue)
}

// queueAction performs retry, hold, release and delete on the entry with
// that id in the queue of ?node= — a wrong node is 404, as a node that
// does not hold the message would answer.
func (f *fakeAPI) queueAction(w http.ResponseWriter, r *http.Request) {
	id, node := r.PathValue("id"), r.URL.Query().Get("node")
	action := r.PathValue("action")
	if r.Method == http.MethodDelete {
		action = "delete"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.queue, func(e fakeEntry) bool { return e.ID == id && e.Node == node })
	if i < 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no message " + id + " on node " + node})
		return
	}
	switch action {
	case "hold":
		f.queue[i].State = "held"
	case "release":
		f.queue[i].State = "deferred"
	case "retry":
		f.queue[i].State = "active"
	case "delete":
		f.queue = slices.Delete(f.queue, i, i+1)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such action " + action})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeAPI) journey(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	events, ok := f.journeys[r.PathValue("id")]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such message"})
		return
	}
	writeJSON(w, http.StatusOK, events)
}

func (f *fakeAPI) account(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.accounts[r.PathValue("address")]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such account"})
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (f *fakeAPI) accountMessages(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	address := r.PathValue("address")
	if _, ok := f.accounts[address]; !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such account"})
		return
	}
	writeJSON(w, http.StatusOK, f.messages[address])
}

// killBackend marks a backend dead, as gossip reports a crash: its
// partitions move to the surviving backend be1 (not open there yet) and
// the node no longer answers for its details.
func (f *fakeAPI) killBackend(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.members {
		if f.members[i].Name == name {
			f.members[i].State = "dead"
		}
	}
	var moved []fakePartitionStatus
	for i := range f.partitions {
		if f.partitions[i].Owner == name {
			f.partitions[i].Owner = "be1"
			moved = append(moved, fakePartitionStatus{ID: f.partitions[i].ID})
		}
	}
	for i := range f.nodes {
		switch f.nodes[i].Name {
		case name:
			f.nodes[i] = fakeNode{Name: name, Roles: f.nodes[i].Roles, State: "dead",
				Partitions: []fakePartitionStatus{}, Error: "no answer within 2s"}
		case "be1":
			f.nodes[i].Partitions = append(f.nodes[i].Partitions, moved...)
			sort.Slice(f.nodes[i].Partitions, func(a, b int) bool {
				return f.nodes[i].Partitions[a].ID < f.nodes[i].Partitions[b].ID
			})
		}
	}
}

// setDepth sets the queue depth a node reports.
func (f *fakeAPI) setDepth(name string, total int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.nodes {
		if f.nodes[i].Name == name {
			f.nodes[i].Queue.Total = total
		}
	}
}

// callsWith returns the recorded state-changing requests that start with prefix.
func (f *fakeAPI) callsWith(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// memberMode returns the queue mode the fake holds for a member.
func (f *fakeAPI) memberMode(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if m.Name == name {
			return m.QueueMode
		}
	}
	return ""
}

// authSeen returns the Authorization headers of every request so far.
func (f *fakeAPI) authSeen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.auth)
}

// setBroken makes GET /api/v1/cluster fail (or work again).
func (f *fakeAPI) setBroken(broken bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broken = broken
}
