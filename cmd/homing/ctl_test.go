package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
)

var (
	ctlT0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	ctlT1 = ctlT0.Add(10 * time.Minute)
)

// ctlEnv is an admin handler over a fake API, served on loopback.
type ctlEnv struct {
	t    *testing.T
	fake *admintest.Fake
	srv  *httptest.Server
	env  map[string]string // what getenv sees
}

// newCtlEnv serves admin.NewHandler(fake) with the given admin token, and
// checks at the end that no goroutine of the test outlives it.
func newCtlEnv(t *testing.T, token string) *ctlEnv {
	t.Helper()
	return newCtlEnvWrapped(t, token, nil)
}

// newCtlEnvWrapped is newCtlEnv with the handler wrapped by wrap (nil: not
// wrapped), to watch the requests.
func newCtlEnvWrapped(t *testing.T, token string, wrap func(http.Handler) http.Handler) *ctlEnv {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	f := admintest.NewFake()
	e := &ctlEnv{t: t, fake: f, env: map[string]string{}}
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
	f.AccountMap["demo@example.test"] = admin.Account{Address: "demo@example.test", QuotaBytes: 1 << 20, UsedBytes: 3000, Messages: 1, Created: ctlT0, Partition: 3, Owner: "n1"}
	f.Passwords["demo@example.test"] = "s3cret"
	f.Mailboxes["demo@example.test"] = []admin.Message{{ID: "M1", Folder: "INBOX", Size: 4096, Received: ctlT0, From: "a@b.test", Subject: "hi \x1b[31mred"}}
	f.Raw[admintest.RawKey("demo@example.test", "M1")] = []byte("Subject: hi\r\n\r\nbody\x00\xff\r\n")
	f.QueueList = []admin.QueueEntry{{
		ID: "Q1", Sender: "", State: "deferred", Attempts: 2, NextAttempt: &ctlT1, LastError: "451 4.4.1 try later",
		Received: ctlT0, Size: 1536,
		Recipients: []admin.QueueRecipient{
			{Address: "x@remote.test", State: "deferred", Attempts: 2, NextAttempt: &ctlT1, LastError: "451 4.4.1 try later"},
			{Address: "y@remote.test", State: "delivered", Attempts: 1},
		},
	}}
	f.ActorCounts["account"] = 3
	f.ActorCounts["queue"] = 2
	f.Counters = admin.Stats{Accepted: 10, DeliveredLocal: 8, QueueDepth: 1, StoreLatencyP50: 0.0021, StoreLatencyP99: 0.0105, Since: ctlT0}
	return e
}

// ctlResult is one run of homing ctl.
type ctlResult struct {
	code           int
	stdout, stderr string
}

// run runs ctl with args and stdin.
func (e *ctlEnv) run(stdin string, args ...string) ctlResult {
	e.t.Helper()
	var out, errb bytes.Buffer
	code := ctlMain(args, strings.NewReader(stdin), &out, &errb, func(k string) string { return e.env[k] })
	return ctlResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok fails unless the run exited 0 with nothing on stderr.
func (r ctlResult) ok(t *testing.T) ctlResult {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	return r
}

// failed fails unless the run exited with code and exactly the stderr line.
func (r ctlResult) failed(t *testing.T, code int, line string) {
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

func TestCtlCluster(t *testing.T) {
	e := newCtlEnv(t, "")
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

func TestCtlRanges(t *testing.T) {
	for want, ids := range map[string][]int{
		"":               nil,
		"7":              {7},
		"0-3,7,9-12":     {0, 1, 2, 3, 7, 9, 10, 11, 12},
		"1,3,5":          {1, 3, 5},
		"0-1":            {0, 1},
		"0-63":           seq(64),
		"2-4,10,100-101": {2, 3, 4, 10, 100, 101},
	} {
		if got := ctlRanges(ids); got != want {
			t.Errorf("ctlRanges(%v) = %q, want %q", ids, got, want)
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

func TestCtlAccounts(t *testing.T) {
	e := newCtlEnv(t, "tok")
	created := ctlT0.Local().Format(time.RFC3339)

	out := e.run("", "accounts").ok(t).stdout
	row(t, out, "ADDRESS", "MESSAGES", "USED", "QUOTA", "PARTITION", "OWNER", "CREATED")
	row(t, out, "demo@example.test", "1", "2.9", "KiB", "1.0", "MiB", "3", "n1", created)

	// Flags may follow the address.
	out = e.run("", "accounts", "add", "u1@example.test", "--password", "pw1", "--quota", "2MiB").ok(t).stdout
	if !strings.HasPrefix(out, "created account u1@example.test (partition ") || strings.Contains(out, "password") {
		t.Errorf("add with a password printed %q", out)
	}
	req := e.fake.CallsTo("CreateAccount")[0].Args[0].(admin.CreateAccount)
	if req != (admin.CreateAccount{Address: "u1@example.test", Password: "pw1", QuotaBytes: 2 << 20}) {
		t.Errorf("sent %+v", req)
	}

	// No password: one is generated, sent and printed.
	out = e.run("", "accounts", "add", "u2@example.test").ok(t).stdout
	m := regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(out)
	req = e.fake.CallsTo("CreateAccount")[1].Args[0].(admin.CreateAccount)
	if m == nil || len(m[1]) < 20 || req.Password != m[1] {
		t.Errorf("generated password: printed %q, sent %q", out, req.Password)
	}
	// ... and it differs each time.
	e.run("", "accounts", "add", "u3@example.test").ok(t)
	if again := e.fake.CallsTo("CreateAccount")[2].Args[0].(admin.CreateAccount); again.Password == req.Password {
		t.Errorf("two generated passwords are equal")
	}

	// --json with a generated password: the account plus the password.
	js := e.run("", "accounts", "add", "u4@example.test", "--json").ok(t).stdout
	var withPw struct {
		Address  string `json:"address"`
		Password string `json:"password"`
	}
	if err := json.Unmarshal([]byte(js), &withPw); err != nil || withPw.Address != "u4@example.test" ||
		withPw.Password != e.fake.CallsTo("CreateAccount")[3].Args[0].(admin.CreateAccount).Password {
		t.Errorf("--json add: %s (%v)", js, err)
	}

	e.run("my secret\r\nignored\n", "accounts", "add", "--password-stdin", "u5@example.test").ok(t)
	if got := e.fake.CallsTo("CreateAccount")[4].Args[0].(admin.CreateAccount).Password; got != "my secret" {
		t.Errorf("--password-stdin sent %q", got)
	}

	e.run("", "accounts", "add", "u1@example.test", "--password", "x").failed(t, 1, "homing ctl: account u1@example.test: already exists")

	out = e.run("", "accounts", "show", "demo@example.test").ok(t).stdout
	row(t, out, "address:", "demo@example.test")
	row(t, out, "quota:", "1.0", "MiB")
	row(t, out, "created:", created)
	aligned(t, out, "address:", 6)

	e.run("", "accounts", "show", "ghost@example.test").failed(t, 1, "homing ctl: account ghost@example.test: not found")

	if out := e.run("", "accounts", "delete", "u1@example.test").ok(t).stdout; out != "deleted account u1@example.test\n" {
		t.Errorf("delete printed %q", out)
	}
	e.run("", "accounts", "delete", "u1@example.test").failed(t, 1, "homing ctl: account u1@example.test: not found")
}

func TestCtlAccountsUsageErrors(t *testing.T) {
	e := newCtlEnv(t, "")
	for _, c := range []struct {
		args []string
		line string
	}{
		{[]string{"accounts", "add"}, "homing ctl: accounts add needs exactly one ADDRESS"},
		{[]string{"accounts", "add", "a@b", "c@d"}, "homing ctl: accounts add needs exactly one ADDRESS"},
		{[]string{"accounts", "add", "a@b", "--quota", "lots"}, `homing ctl: --quota: "lots" is not a size (bytes, or a number with K, M, G, T)`},
		{[]string{"accounts", "add", "a@b", "--quota", "5X"}, `homing ctl: --quota: "5X": unknown unit (K, M, G, T)`},
		{[]string{"accounts", "add", "a@b", "--password", "p", "--password-stdin"}, "homing ctl: give only one of --password and --password-stdin"},
		{[]string{"accounts", "add", "a@b", "--frobnicate"}, "homing ctl: flag provided but not defined: -frobnicate"},
		{[]string{"accounts", "show"}, "homing ctl: accounts show needs exactly one ADDRESS"},
		{[]string{"accounts", "purge"}, `homing ctl: unknown accounts command "purge" (add, show, delete, import)`},
	} {
		r := e.run("", c.args...)
		r.failed(t, 2, c.line)
		if !strings.Contains(r.stderr, "usage: homing ctl") {
			t.Errorf("%v: no usage text", c.args)
		}
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Errorf("usage errors reached the API %d times", n)
	}
}

// "--" ends the flags, so an address may start with a dash; a "--" that
// is a flag's value is a value.
func TestCtlDoubleDash(t *testing.T) {
	e := newCtlEnv(t, "")
	e.run("", "accounts", "add", "--password", "--", "--", "-odd@example.test").ok(t)
	req := e.fake.CallsTo("CreateAccount")[0].Args[0].(admin.CreateAccount)
	if req.Address != "-odd@example.test" || req.Password != "--" {
		t.Errorf("sent %+v", req)
	}
}

func TestCtlMessages(t *testing.T) {
	e := newCtlEnv(t, "")
	out := e.run("", "messages", "demo@example.test").ok(t).stdout
	row(t, out, "ID", "FOLDER", "SIZE", "RECEIVED", "FROM", "SUBJECT")
	// The terminal escape in the subject is neutralised.
	row(t, out, "M1", "INBOX", "4.0", "KiB", ctlT0.Local().Format(time.RFC3339), "a@b.test", "hi", "?[31mred")
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape character reached the terminal")
	}

	raw := e.run("", "message", "demo@example.test", "M1").ok(t).stdout
	if raw != "Subject: hi\r\n\r\nbody\x00\xff\r\n" {
		t.Errorf("raw message %q", raw)
	}
	e.run("", "message", "demo@example.test", "NOPE").failed(t, 1, "homing ctl: message NOPE of demo@example.test: not found")
	e.run("", "messages", "ghost@example.test").failed(t, 1, "homing ctl: account ghost@example.test: not found")
	e.run("", "message", "demo@example.test").failed(t, 2, "homing ctl: message needs ADDRESS and ID")
}

func TestCtlQueue(t *testing.T) {
	e := newCtlEnv(t, "")
	next := ctlT1.Local().Format(time.RFC3339)
	out := e.run("", "queue").ok(t).stdout
	row(t, out, "ID", "STATE", "ATTEMPTS", "NEXT", "ATTEMPT", "SIZE", "SENDER", "RECIPIENTS", "LAST", "ERROR")
	row(t, out, "Q1", "deferred", "2", next, "1.5", "KiB", "<>", "x@remote.test", "(+1)", "451", "4.4.1", "try", "later")

	out = e.run("", "queue", "show", "Q1").ok(t).stdout
	row(t, out, "sender:", "<>")
	row(t, out, "next", "attempt:", next)
	row(t, out, "x@remote.test", "deferred", "2", next, "451", "4.4.1", "try", "later")
	row(t, out, "y@remote.test", "delivered", "1", "-", "-")

	var entry admin.QueueEntry
	if err := json.Unmarshal([]byte(e.run("", "queue", "show", "Q1", "--json").ok(t).stdout), &entry); err != nil || entry.ID != "Q1" || len(entry.Recipients) != 2 {
		t.Errorf("--json queue show: %+v %v", entry, err)
	}

	e.run("", "queue", "show", "01ABC").failed(t, 1, "homing ctl: queue 01ABC: not found")
	// A message that does not name the id gets it as a prefix; one that
	// does is printed as it is.
	e.fake.SetErr("QueueEntry", &admin.Error{Status: 404, Message: "no such entry"})
	e.run("", "queue", "show", "Z9").failed(t, 1, "homing ctl: queue Z9: no such entry")
	e.fake.SetErr("QueueEntry", &admin.Error{Status: 404, Message: "queue entry Z9: not found"})
	e.run("", "queue", "show", "Z9").failed(t, 1, "homing ctl: queue entry Z9: not found")
	e.fake.SetErr("QueueEntry", nil)
	e.fake.SetErr("Stats", errors.New("disk on fire"))
	e.run("", "stats").failed(t, 1, "homing ctl: stats: internal error")

	// Several ids: each one is reported; a failure makes the exit code 1.
	r := e.run("", "queue", "hold", "Q1", "01ABC")
	if r.stdout != "Q1: held\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	r.failed(t, 1, "homing ctl: queue 01ABC: not found")
	if e.run("", "queue", "release", "Q1").ok(t).stdout != "Q1: released\n" ||
		e.run("", "queue", "retry", "Q1").ok(t).stdout != "Q1: retry scheduled\n" ||
		e.run("", "queue", "delete", "Q1").ok(t).stdout != "Q1: deleted\n" {
		t.Errorf("queue actions printed the wrong lines")
	}
	var acts []string
	for _, c := range e.fake.CallsTo("QueueAction") {
		acts = append(acts, c.Args[0].(string)+" "+c.Args[1].(string))
	}
	if strings.Join(acts, ",") != "Q1 hold,01ABC hold,Q1 release,Q1 retry,Q1 delete" {
		t.Errorf("actions %q", acts)
	}
	e.run("", "queue", "retry").failed(t, 2, "homing ctl: queue retry needs at least one ID")
	e.run("", "queue", "flush").failed(t, 2, `homing ctl: unknown queue command "flush" (show, retry, hold, release, delete)`)
}

func TestCtlSettings(t *testing.T) {
	e := newCtlEnv(t, "")
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

func TestCtlActorsAndStats(t *testing.T) {
	e := newCtlEnv(t, "")
	out := e.run("", "actors").ok(t).stdout
	if out != "KIND     COUNT\naccount  3\nqueue    2\ntotal    5\n" {
		t.Errorf("actors:\n%s", out)
	}
	out = e.run("", "stats").ok(t).stdout
	row(t, out, "accepted:", "10")
	row(t, out, "delivered", "local:", "8")
	row(t, out, "store", "latency", "p50:", "2.1", "ms")
	row(t, out, "store", "latency", "p99:", "10.5", "ms")
	row(t, out, "since:", ctlT0.Local().Format(time.RFC3339))
	aligned(t, out, "accepted:", 8)

	var st admin.Stats
	if err := json.Unmarshal([]byte(e.run("", "stats", "--json").ok(t).stdout), &st); err != nil || !reflect.DeepEqual(st, e.fake.Counters) {
		t.Errorf("--json stats %+v %v", st, err)
	}
}

func TestCtlSubmit(t *testing.T) {
	e := newCtlEnv(t, "admintok")
	file := filepath.Join(t.TempDir(), "msg.eml")
	msg := "From: demo@example.test\r\nSubject: s\r\n\r\nhello\r\n"
	if err := os.WriteFile(file, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := e.run("", "submit", "--user", "demo@example.test", "--password", "s3cret", "--to", "a@x.test, b@x.test", "--to", "c@x.test", file).ok(t).stdout
	if out != "queued SUB1\n" {
		t.Errorf("stdout %q", out)
	}
	e.env["HOMING_PASSWORD"] = "s3cret"
	out = e.run(msg, "submit", "--user", "demo@example.test", "--to", "a@x.test", "-", "--json").ok(t).stdout
	var res admin.SubmitResponse
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ID != "SUB2" {
		t.Errorf("--json submit %q", out)
	}
	e.fake.Lock()
	sub := e.fake.Submitted
	e.fake.Unlock()
	if len(sub) != 2 || strings.Join(sub[0].To, " ") != "a@x.test b@x.test c@x.test" || string(sub[0].Raw) != msg || string(sub[1].Raw) != msg {
		t.Errorf("submitted %+v", sub)
	}

	e.run(msg, "submit", "--user", "demo@example.test", "--password", "nope", "--to", "a@x.test").failed(t, 1, "homing ctl: submit: authentication failed")
	e.run("", "submit", "--password", "p", "--to", "a@x.test").failed(t, 2, "homing ctl: submit needs --user")
	e.run("", "submit", "--user", "u@x", "--password", "p").failed(t, 2, "homing ctl: submit needs --to")
	e.run("", "submit", "--user", "u@x", "--password", "p", "--to", "a@x.test", "-").failed(t, 1, "homing ctl: the message is empty")
}

func TestCtlTokensAndAddress(t *testing.T) {
	e := newCtlEnv(t, "tok")
	e.run("", "stats").ok(t) // token and address from the environment

	e.env["HOMING_TOKEN"] = ""
	e.run("", "stats").failed(t, 1, "homing ctl: stats: missing bearer token (give the admin token with --token or $HOMING_TOKEN)")
	e.run("", "--token", "tok", "stats").ok(t)
	e.run("", "stats", "--token=tok").ok(t)

	// --admin overrides $HOMING_ADMIN and accepts a URL.
	e.env["HOMING_ADMIN"] = "127.0.0.1:1"
	e.run("", "--admin", e.srv.URL, "--token", "tok", "actors").ok(t)
}

func TestCtlUnreachable(t *testing.T) {
	e := newCtlEnv(t, "")
	addr := e.env["HOMING_ADMIN"]
	e.srv.Close()
	r := e.run("", "stats")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "homing ctl: admin API at http://"+addr+": ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCtlUsage(t *testing.T) {
	e := newCtlEnv(t, "")
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"accounts", "add", "-h"}} {
		r := e.run("", args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: homing ctl") || r.stderr != "" {
			t.Errorf("%v: exit %d stdout %q stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	for _, cmd := range []string{"\n  nodes ", "\n  journey ID ", "\n  accounts import FILE|- ", "\n  queue [--cluster | --node N] ",
		"\n  queue retry --all [--cluster | --node N]", "\n  settings set queue-mode MODE [--node N]"} {
		if !strings.Contains(ctlUsage, cmd) {
			t.Errorf("the usage text does not list %q", strings.TrimSpace(cmd))
		}
	}
	e.run("").failed(t, 2, "homing ctl: no command given")
	e.run("", "explode").failed(t, 2, `homing ctl: unknown command "explode"`)
	e.run("", "--bogus", "stats").failed(t, 2, "homing ctl: flag provided but not defined: -bogus")
	e.run("", "stats", "extra").failed(t, 2, "homing ctl: stats takes no arguments")
	e.run("", "--timeout", "0s", "stats").failed(t, 2, "homing ctl: --timeout must be positive")
	// runCtl itself is the same entry point with the process's stdin.
	var out, errb bytes.Buffer
	if code := runCtl([]string{"help"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "usage: homing ctl") {
		t.Errorf("runCtl help: %d %q", code, out.String())
	}
}

func TestCtlSizes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB", 2 << 40: "2.0 TiB"} {
		if got := ctlSize(n); got != want {
			t.Errorf("ctlSize(%d) = %q, want %q", n, got, want)
		}
	}
	for in, want := range map[string]int64{"1048576": 1 << 20, "500MiB": 500 << 20, "500M": 500 << 20, "2G": 2 << 30, "64k": 64 << 10, "1 GB": 1 << 30, "3TiB": 3 << 40, "0": 0} {
		if got, err := ctlParseSize(in); err != nil || got != want {
			t.Errorf("ctlParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-5", "5X", "9999999999T", "1.5G"} {
		if _, err := ctlParseSize(bad); err == nil {
			t.Errorf("ctlParseSize(%q) accepted", bad)
		}
	}
}

func TestCtlRules(t *testing.T) {
	e := newCtlEnv(t, "")
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
