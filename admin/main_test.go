package admin_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
	"github.com/homing-mail/homing/testkit/tlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is one admin handler on a loopback httptest server over a fake API.
type env struct {
	t    *testing.T
	fake *admintest.Fake
	srv  *httptest.Server
	log  *tlog.Lines // the handler's log, also in t.Log
}

func newEnv(t *testing.T, opt admin.Options) *env {
	t.Helper()
	e := &env{t: t, fake: admintest.NewFake(), log: new(tlog.Lines)}
	if opt.Logger == nil {
		opt.Logger = tlog.New(t, "admin", tlog.KeepIn(e.log))
	}
	e.srv = httptest.NewServer(admin.NewHandler(e.fake, opt)) // listens on 127.0.0.1:0
	t.Cleanup(e.srv.Close)
	return e
}

// reply is one HTTP answer read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; hdr holds "Name: value" pairs (Host is honoured).
func (e *env) do(method, path, body string, hdr ...string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// expect fails unless the reply has the status; for JSON answers it also
// checks the Content-Type.
func (r reply) expect(t *testing.T, status int) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if len(r.body) > 0 && r.header.Get("Content-Type") != "application/json" && r.header.Get("Content-Type") != "message/rfc822" && !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("Content-Type %q", r.header.Get("Content-Type"))
	}
	return r
}

// field is the "field" of an error body ("" when there is none).
func (r reply) field(t *testing.T) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	f, _ := m["field"].(string)
	return f
}

// errorText decodes {"error": "..."}, failing on any other shape.
func (r reply) errorText(t *testing.T) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q, want application/json; body %s", ct, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	if _, ok := m["field"].(string); len(m) != 1 && (len(m) != 2 || !ok) {
		t.Fatalf("error body %s: want exactly the key \"error\" (and \"field\" naming the field at fault)", r.body)
	}
	s, ok := m["error"].(string)
	if !ok || s == "" {
		t.Fatalf("error body %s: no \"error\" string", r.body)
	}
	return s
}

// object decodes a JSON object.
func (r reply) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// array decodes a JSON array of objects.
func (r reply) array(t *testing.T) []map[string]any {
	t.Helper()
	var a []map[string]any
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return a
}

// keys returns the sorted keys of m.
func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// wantKeys fails unless m has exactly the keys want.
func wantKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keys(m); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s keys %v, want %v", what, got, want)
	}
}

var (
	t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	t1 = t0.Add(10 * time.Minute)
)

// populate fills the fake with one of everything, every field set.
func populate(f *admintest.Fake) {
	f.Lock()
	defer f.Unlock()
	f.ClusterInfo = admin.Cluster{
		Members: []admin.Member{
			{Name: "n1", Roles: []string{"frontend", "backend"}, QueueMode: "locally", State: "alive", SMTP: "127.0.0.1:2525", Admin: "127.0.0.1:8025", Version: "v1", Uptime: "1h"},
			{Name: "n2", Roles: []string{"backend"}, QueueMode: "remotely", State: "suspect", SMTP: "127.0.0.2:2525", Admin: "127.0.0.2:8025"},
		},
		Partitions: []admin.Partition{{ID: 0, Owner: "n1"}, {ID: 1, Owner: "n2"}, {ID: 2, Owner: "n1"}},
	}
	f.AccountMap["demo@example.test"] = admin.Account{Address: "demo@example.test", QuotaBytes: 1 << 20, UsedBytes: 300, Messages: 1, Created: t0, Partition: 3, Owner: "n1"}
	f.Passwords["demo@example.test"] = "s3cret"
	f.Mailboxes["demo@example.test"] = []admin.Message{{ID: "M1", Folder: "INBOX", Size: 300, Received: t0, Flags: []string{`\Seen`}, From: "a@b.test", Subject: "hi"}}
	f.Raw[admintest.RawKey("demo@example.test", "M1")] = []byte("Subject: hi\r\n\r\nbody\r\n")
	f.QueueList = []admin.QueueEntry{{
		ID: "Q1", Sender: "a@b.test", State: "deferred", Attempts: 2, NextAttempt: &t1, LastError: "451 4.4.1 try later",
		Received: t0, Size: 1234,
		Recipients: []admin.QueueRecipient{{Address: "x@remote.test", State: "deferred", Attempts: 2, NextAttempt: &t1, LastError: "451 4.4.1 try later"}},
	}}
	f.ActorCounts["account"] = 3
	f.ActorCounts["queue"] = 2
	f.Counters = admin.Stats{Accepted: 10, DeliveredLocal: 8, Relayed: 1, Bounced: 1, Deferred: 2, QueueDepth: 1, StoreLatencyP50: 0.002, StoreLatencyP99: 0.01, Since: t0}
}

// basic is the credentials part of an RFC 7617 Authorization header.
func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}
