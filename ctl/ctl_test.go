package ctl

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
)

var (
	t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	t1 = t0.Add(10 * time.Minute)
)

// testEnv is an admin handler over a fake API, served on loopback.
type testEnv struct {
	t    *testing.T
	fake *admintest.Fake
	srv  *httptest.Server
	env  map[string]string // what getenv sees
}

// newTestEnv serves admin.NewHandler(fake) with the given admin token, and
// checks at the end that no goroutine of the test outlives it.
func newTestEnv(t *testing.T, token string) *testEnv {
	t.Helper()
	return newTestEnvWrapped(t, token, nil)
}

// newTestEnvWrapped is newTestEnv with the handler wrapped by wrap (nil: not
// wrapped), to watch the requests.
func newTestEnvWrapped(t *testing.T, token string, wrap func(http.Handler) http.Handler) *testEnv {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	f := admintest.NewFake()
	e := &testEnv{t: t, fake: f, env: map[string]string{}}
	h := admin.NewHandler(f, admin.Options{Token: token})
	if wrap != nil {
		h = wrap(h)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	e.env["HOMING_ADMIN"] = e.srv.Listener.Addr().String() // host:port, no scheme
	e.env["HOMING_TOKEN"] = token

	f.Lock()
	defer f.Unlock()
	f.ClusterInfo = admin.Cluster{
		Members: []admin.Member{
			{Name: "n1", Roles: []string{"frontend", "backend"}, QueueMode: "locally", State: "alive", SMTP: "127.0.0.1:2525", Admin: "127.0.0.1:8025", Version: "v1", Uptime: "1h0m0s"},
			{Name: "n2", Roles: []string{"backend"}, QueueMode: "locally-for-others", State: "suspect", SMTP: "127.0.0.2:2525", Admin: "127.0.0.2:8025"},
		},
		Partitions: []admin.Partition{{ID: 0, Owner: "n1"}, {ID: 1, Owner: "n1"}, {ID: 2, Owner: "n1"}, {ID: 3, Owner: "n1"}, {ID: 4, Owner: "n2"}, {ID: 5, Owner: "n1"}, {ID: 6, Owner: "n2"}, {ID: 7, Owner: "n2"}, {ID: 8, Owner: ""}},
	}
	f.AccountMap["demo@example.test"] = admin.Account{Address: "demo@example.test", QuotaBytes: 1 << 20, UsedBytes: 3000, Messages: 1, Created: t0, Partition: 3, Owner: "n1"}
	f.Passwords["demo@example.test"] = "s3cret"
	f.Mailboxes["demo@example.test"] = []admin.Message{{ID: "M1", Folder: "INBOX", Size: 4096, Received: t0, From: "a@b.test", Subject: "hi \x1b[31mred"}}
	f.Raw[admintest.RawKey("demo@example.test", "M1")] = []byte("Subject: hi\r\n\r\nbody\x00\xff\r\n")
	f.QueueList = []admin.QueueEntry{{
		ID: "Q1", Sender: "", State: "deferred", Attempts: 2, NextAttempt: &t1, LastError: "451 4.4.1 try later",
		Received: t0, Size: 1536,
		Recipients: []admin.QueueRecipient{
			{Address: "x@remote.test", State: "deferred", Attempts: 2, NextAttempt: &t1, LastError: "451 4.4.1 try later"},
			{Address: "y@remote.test", State: "delivered", Attempts: 1},
		},
	}}
	f.ActorCounts["account"] = 3
	f.ActorCounts["queue"] = 2
	f.Counters = admin.Stats{Accepted: 10, DeliveredLocal: 8, QueueDepth: 1, StoreLatencyP50: 0.0021, StoreLatencyP99: 0.0105, Since: t0}
	return e
}

// result is one run of homing ctl.
type result struct {
	code           int
	stdout, stderr string
}

// run runs ctl with args and stdin.
func (e *testEnv) run(stdin string, args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errb, func(k string) string { return e.env[k] })
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok fails unless the run exited 0 with nothing on stderr.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	return r
}

// failed fails unless the run exited with code and exactly the stderr line.
func (r result) failed(t *testing.T, code int, line string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d; stderr %q", r.code, code, r.stderr)
	}
	first, _, _ := strings.Cut(r.stderr, "\n")
	if first != line {
		t.Fatalf("stderr first line %q, want %q", first, line)
	}
}

// row finds the output line whose whitespace-separated fields are want.
func row(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(line), " ") == strings.Join(want, " ") {
			return
		}
	}
	t.Errorf("no row %q in\n%s", want, out)
}

// aligned checks that a table's columns start at the same offsets on
// every line of the block that starts with header.
func aligned(t *testing.T, out, header string, rows int) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, header) {
			continue
		}
		cols := regexp.MustCompile(`\S+(?: \S+)*`).FindAllStringIndex(l, -1) // columns are 2+ spaces apart
		for _, r := range lines[i+1 : i+1+rows] {
			for _, c := range cols {
				if c[0] > 0 && (len(r) <= c[0] || r[c[0]-1] != ' ' || r[c[0]] == ' ') {
					t.Errorf("column at %d not aligned in %q (header %q)", c[0], r, l)
				}
			}
		}
		return
	}
	t.Errorf("no header %q in\n%s", header, out)
}

// "--" ends the flags, so an address may start with a dash; a "--" that
// is a flag's value is a value.
func TestDoubleDash(t *testing.T) {
	e := newTestEnv(t, "")
	e.run("", "accounts", "add", "--password", "--", "--", "-odd@example.test").ok(t)
	req := e.fake.CallsTo("CreateAccount")[0].Args[0].(admin.CreateAccount)
	if req.Address != "-odd@example.test" || req.Password != "--" {
		t.Errorf("sent %+v", req)
	}
}

func TestTokensAndAddress(t *testing.T) {
	e := newTestEnv(t, "tok")
	e.run("", "stats").ok(t) // token and address from the environment

	e.env["HOMING_TOKEN"] = ""
	e.run("", "stats").failed(t, 1, "homing ctl: stats: missing bearer token (give the admin token with --token or $HOMING_TOKEN)")
	e.run("", "--token", "tok", "stats").ok(t)
	e.run("", "stats", "--token=tok").ok(t)

	// --admin overrides $HOMING_ADMIN and accepts a URL.
	e.env["HOMING_ADMIN"] = "127.0.0.1:1"
	e.run("", "--admin", e.srv.URL, "--token", "tok", "actors").ok(t)
}

func TestUnreachable(t *testing.T) {
	e := newTestEnv(t, "")
	addr := e.env["HOMING_ADMIN"]
	e.srv.Close()
	r := e.run("", "stats")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "homing ctl: admin API at http://"+addr+": ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestUsage(t *testing.T) {
	e := newTestEnv(t, "")
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"accounts", "add", "-h"}} {
		r := e.run("", args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: homing ctl") || r.stderr != "" {
			t.Errorf("%v: exit %d stdout %q stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	for _, cmd := range []string{"\n  nodes ", "\n  journey ID ", "\n  accounts import FILE|- ", "\n  queue [--cluster | --node N] ",
		"\n  queue retry --all [--cluster | --node N]", "\n  settings set queue-mode MODE [--node N]"} {
		if !strings.Contains(usage, cmd) {
			t.Errorf("the usage text does not list %q", strings.TrimSpace(cmd))
		}
	}
	e.run("").failed(t, 2, "homing ctl: no command given")
	e.run("", "explode").failed(t, 2, `homing ctl: unknown command "explode" (homing ctl help lists the commands)`)
	e.run("", "--bogus", "stats").failed(t, 2, "homing ctl: flag provided but not defined: -bogus")
	e.run("", "stats", "extra").failed(t, 2, "homing ctl: stats takes no arguments")
	e.run("", "--timeout", "0s", "stats").failed(t, 2, "homing ctl: --timeout must be positive")
}
