package admin_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
)

// The JSON shapes of design.md's external contract, plus the documented
// extensions: a rename of any field fails here.
func TestContractShapes(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populate(e.fake)

	c := e.do("GET", "/api/v1/cluster", "").expect(t, 200).object(t)
	wantKeys(t, "cluster", c, "members", "partitions")
	members := c["members"].([]any)
	wantKeys(t, "member", members[0].(map[string]any), "name", "roles", "queueMode", "state", "smtp", "admin", "version", "uptime")
	wantKeys(t, "member without extensions", members[1].(map[string]any), "name", "roles", "queueMode", "state", "smtp", "admin")
	wantKeys(t, "partition", c["partitions"].([]any)[0].(map[string]any), "id", "owner")

	accts := e.do("GET", "/api/v1/accounts", "").expect(t, 200).array(t)
	if len(accts) != 1 {
		t.Fatalf("accounts: %d", len(accts))
	}
	wantKeys(t, "account", accts[0], "address", "quotaBytes", "usedBytes", "messages", "created", "partition", "owner", "disabled")
	a := e.do("GET", "/api/v1/accounts/demo@example.test", "").expect(t, 200).object(t)
	if a["address"] != "demo@example.test" || a["created"] != "2025-03-04T05:06:07Z" {
		t.Errorf("account %v", a)
	}

	msgs := e.do("GET", "/api/v1/accounts/demo@example.test/messages", "").expect(t, 200).array(t)
	wantKeys(t, "message", msgs[0], "id", "folder", "size", "received", "flags", "from", "subject")

	q := e.do("GET", "/api/v1/queue", "").expect(t, 200).array(t)
	wantKeys(t, "queue entry", q[0], "id", "sender", "recipients", "state", "attempts", "nextAttempt", "lastError", "received", "size")
	wantKeys(t, "queue recipient", q[0]["recipients"].([]any)[0].(map[string]any), "address", "state", "attempts", "nextAttempt", "lastError")
	qe := e.do("GET", "/api/v1/queue/Q1", "").expect(t, 200).object(t)
	if qe["id"] != "Q1" || qe["nextAttempt"] != "2025-03-04T05:16:07Z" {
		t.Errorf("queue entry %v", qe)
	}

	s := e.do("GET", "/api/v1/settings", "").expect(t, 200).object(t)
	wantKeys(t, "settings", s, "queueMode", "name", "roles")
	if s["queueMode"] != "locally" {
		t.Errorf("settings %v", s)
	}

	act := e.do("GET", "/api/v1/actors", "").expect(t, 200).object(t)
	if act["account"] != float64(3) || act["queue"] != float64(2) || len(act) != 2 {
		t.Errorf("actors %v", act)
	}

	st := e.do("GET", "/api/v1/stats", "").expect(t, 200).object(t)
	wantKeys(t, "stats", st, "accepted", "deliveredLocal", "relayed", "bounced", "deferred", "queueDepth", "storeLatencyP50", "storeLatencyP99", "since", "transferred", "filterRuns")
	if st["deliveredLocal"] != float64(8) || st["storeLatencyP99"] != 0.01 {
		t.Errorf("stats %v", st)
	}
}

// Empty lists are [] and empty maps {}, never null, so clients can index
// them without checks.
func TestEmptyCollectionsAreNotNull(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.fake.Lock()
	e.fake.AccountMap["a@b.test"] = admin.Account{Address: "a@b.test"}
	e.fake.QueueList = []admin.QueueEntry{{ID: "Q"}}
	e.fake.Current.Roles = nil
	e.fake.Unlock()
	for path, want := range map[string]string{
		"/api/v1/cluster":                    `{"members":[],"partitions":[]}`,
		"/api/v1/accounts/a@b.test/messages": `[]`,
		"/api/v1/actors":                     `{}`,
	} {
		if got := strings.TrimSpace(string(e.do("GET", path, "").expect(t, 200).body)); got != want {
			t.Errorf("GET %s = %s, want %s", path, got, want)
		}
	}
	if got := e.do("GET", "/api/v1/queue", "").expect(t, 200).body; !strings.Contains(string(got), `"recipients":[]`) {
		t.Errorf("queue %s: recipients should be []", got)
	}
	if got := e.do("GET", "/api/v1/settings", "").expect(t, 200).body; !strings.Contains(string(got), `"roles":[]`) {
		t.Errorf("settings %s: roles should be []", got)
	}
	e.fake.Lock()
	clear(e.fake.AccountMap)
	e.fake.Unlock()
	if got := strings.TrimSpace(string(e.do("GET", "/api/v1/accounts", "").expect(t, 200).body)); got != "[]" {
		t.Errorf("accounts %s", got)
	}
}

func TestCreateAccount(t *testing.T) {
	e := newEnv(t, admin.Options{})
	r := e.do("POST", "/api/v1/accounts", `{"address":"u@example.test","password":"pw","quotaBytes":1000}`).expect(t, 201)
	a := r.object(t)
	if a["address"] != "u@example.test" || a["quotaBytes"] != float64(1000) {
		t.Errorf("created %v", a)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/accounts/u@example.test" {
		t.Errorf("Location %q", loc)
	}
	calls := e.fake.CallsTo("CreateAccount")
	if len(calls) != 1 || calls[0].Args[0] != (admin.CreateAccount{Address: "u@example.test", Password: "pw", QuotaBytes: 1000}) {
		t.Fatalf("calls %+v", calls)
	}
	// The same address again is 409 with the node's text.
	msg := e.do("POST", "/api/v1/accounts", `{"address":"u@example.test","passwordHash":"$argon2id$x"}`).expect(t, 409).errorText(t)
	if !strings.Contains(msg, "already exists") {
		t.Errorf("409 message %q", msg)
	}
}

func TestBadBodies(t *testing.T) {
	e := newEnv(t, admin.Options{BodyLimit: 200})
	big := `{"address":"u@example.test","password":"` + strings.Repeat("x", 300) + `"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string // in the error text
	}{
		{"malformed", "POST", "/api/v1/accounts", `{"address":`, 400, "invalid JSON"},
		{"syntax", "POST", "/api/v1/accounts", `{"address" "x"}`, 400, "invalid JSON"},
		{"empty", "POST", "/api/v1/accounts", ``, 400, "empty"},
		{"unknown field", "POST", "/api/v1/accounts", `{"address":"u@example.test","password":"p","admin":true}`, 400, `unknown field "admin"`},
		{"wrong type", "POST", "/api/v1/accounts", `{"address":"u@example.test","password":"p","quotaBytes":"big"}`, 400, "quotaBytes"},
		{"trailing data", "POST", "/api/v1/accounts", `{"address":"u@example.test","password":"p"} {}`, 400, "after"},
		{"not an object", "POST", "/api/v1/accounts", `[1]`, 400, "invalid JSON"},
		{"too large", "POST", "/api/v1/accounts", big, 413, "too large"},
		{"missing address", "POST", "/api/v1/accounts", `{"password":"p"}`, 400, "address is required"},
		{"bad address", "POST", "/api/v1/accounts", `{"address":"nodomain","password":"p"}`, 400, "local@domain"},
		{"no password", "POST", "/api/v1/accounts", `{"address":"u@example.test"}`, 400, "password"},
		{"both passwords", "POST", "/api/v1/accounts", `{"address":"u@example.test","password":"p","passwordHash":"h"}`, 400, "only one"},
		{"negative quota", "POST", "/api/v1/accounts", `{"address":"u@example.test","password":"p","quotaBytes":-1}`, 400, "quotaBytes"},
		{"settings unknown field", "PUT", "/api/v1/settings", `{"queueMod":"locally"}`, 400, `unknown field "queueMod"`},
		{"settings bad mode", "PUT", "/api/v1/settings", `{"queueMode":"sometimes"}`, 400, "locally-for-others"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := e.do(c.method, c.path, c.body).expect(t, c.status).errorText(t)
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q, want it to contain %q", msg, c.want)
			}
		})
	}
	if n := len(e.fake.CallsTo("CreateAccount")) + len(e.fake.CallsTo("UpdateSettings")); n != 0 {
		t.Errorf("the API was called %d times for bad bodies", n)
	}
}

func TestDeleteAccount(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populate(e.fake)
	r := e.do("DELETE", "/api/v1/accounts/demo@example.test", "").expect(t, 204)
	if len(r.body) != 0 {
		t.Errorf("204 with body %q", r.body)
	}
	msg := e.do("DELETE", "/api/v1/accounts/demo@example.test", "").expect(t, 404).errorText(t)
	if msg != "account demo@example.test: not found" {
		t.Errorf("404 message %q", msg)
	}
	e.do("GET", "/api/v1/accounts/demo@example.test", "").expect(t, 404)
	// The address reaches the API unescaped.
	e.do("GET", "/api/v1/accounts/demo%40example.test", "").expect(t, 404)
	calls := e.fake.CallsTo("Account")
	if calls[len(calls)-1].Args[0] != "demo@example.test" {
		t.Errorf("escaped address reached the API as %v", calls[len(calls)-1].Args[0])
	}
}

func TestRawMessage(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populate(e.fake)
	r := e.do("GET", "/api/v1/accounts/demo@example.test/messages/M1/raw", "").expect(t, 200)
	if ct := r.header.Get("Content-Type"); ct != "message/rfc822" {
		t.Errorf("Content-Type %q", ct)
	}
	if string(r.body) != "Subject: hi\r\n\r\nbody\r\n" {
		t.Errorf("raw %q", r.body)
	}
	e.do("GET", "/api/v1/accounts/demo@example.test/messages/NOPE/raw", "").expect(t, 404).errorText(t)
}

func TestQueueActions(t *testing.T) {
	e := newEnv(t, admin.Options{})
	populate(e.fake)
	for _, action := range []string{"hold", "release", "retry"} {
		r := e.do("POST", "/api/v1/queue/Q1/"+action, "").expect(t, 204)
		if len(r.body) != 0 {
			t.Errorf("%s: body %q", action, r.body)
		}
	}
	e.do("POST", "/api/v1/queue/Q1/frobnicate", "").expect(t, 404).errorText(t)
	e.do("DELETE", "/api/v1/queue/Q1", "").expect(t, 204)
	msg := e.do("POST", "/api/v1/queue/Q1/retry", "").expect(t, 404).errorText(t)
	if msg != "queue Q1: not found" {
		t.Errorf("message %q", msg)
	}
	var got []string
	for _, c := range e.fake.CallsTo("QueueAction") {
		got = append(got, fmt.Sprint(c.Args...))
	}
	want := "Q1hold Q1release Q1retry Q1delete Q1retry"
	if strings.Join(got, " ") != want {
		t.Errorf("actions %q, want %q", got, want)
	}
}

func TestUpdateSettings(t *testing.T) {
	e := newEnv(t, admin.Options{})
	s := e.do("PUT", "/api/v1/settings", `{"queueMode":"remotely"}`).expect(t, 200).object(t)
	if s["queueMode"] != "remotely" {
		t.Errorf("settings after PUT %v", s)
	}
	if s := e.do("GET", "/api/v1/settings", "").expect(t, 200).object(t); s["queueMode"] != "remotely" {
		t.Errorf("settings after GET %v", s)
	}
	// An empty update changes nothing and shows the settings.
	if s := e.do("PUT", "/api/v1/settings", `{}`).expect(t, 200).object(t); s["queueMode"] != "remotely" {
		t.Errorf("settings after empty PUT %v", s)
	}
}

// A throttled login (429) and a busy server (503) carry the Retry-After the
// API gives, in whole seconds rounded up; a 503 without one gets the
// default.
func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		want   string
	}{
		{&admin.Error{Status: 429, Message: "too many failed logins", RetryAfter: 89500 * time.Millisecond}, 429, "90"},
		{&admin.Error{Status: 503, Message: "busy", RetryAfter: time.Second}, 503, "1"},
		{&admin.Error{Status: 503, Message: "no owner"}, 503, "5"},
		{&admin.Error{Status: 400, Message: "bad", RetryAfter: time.Second}, 400, ""},
	} {
		e := newEnv(t, admin.Options{})
		e.fake.SetErr("Stats", c.err)
		if got := e.do("GET", "/api/v1/stats", "").expect(t, c.status).header.Get("Retry-After"); got != c.want {
			t.Errorf("%v: Retry-After %q, want %q", c.err, got, c.want)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		msg    string
	}{
		{fmt.Errorf("account x@y: %w", mail.ErrNotFound), 404, "account x@y: not found"},
		{mail.ErrNoSuchUser, 404, "no such user"},
		{fmt.Errorf("account x@y: %w", mail.ErrExists), 409, "account x@y: already exists"},
		{mail.ErrAuthFailed, 401, "authentication failed"},
		{&admin.Error{Status: 503, Message: "partition 3 has no owner"}, 503, "partition 3 has no owner"},
		{fmt.Errorf("wrapped: %w", &admin.Error{Status: 422, Message: "quota too small"}), 422, "quota too small"},
		{&admin.Error{Status: 0, Message: "no status"}, 500, "no status"},
		{errors.New("badger: /var/lib/secret/000001.vlog: disk on fire"), 500, "internal error"},
		{fmt.Errorf("partition 3: %w", mail.ErrUnavailable), 503, "partition 3: temporarily unavailable"},
		{fmt.Errorf("queue action: %w", mail.ErrInvalid), 400, "queue action: invalid request"},
		{mail.Temporaryf(mail.StatusLocalError, "disk full"), 503, "451 4.3.0 disk full"},
		{fmt.Errorf("%w: not an address", mail.ErrBadAddress), 400, "bad address syntax: not an address"},
	}
	for _, c := range cases {
		t.Run(c.msg, func(t *testing.T) {
			e := newEnv(t, admin.Options{})
			e.fake.SetErr("Stats", c.err)
			res := e.do("GET", "/api/v1/stats", "").expect(t, c.status)
			msg := res.errorText(t)
			if msg != c.msg {
				t.Errorf("message %q, want %q", msg, c.msg)
			}
			if got := res.header.Get("Retry-After"); (c.status == 503) != (got != "") {
				t.Errorf("Retry-After %q on a %d", got, c.status)
			}
			if c.status == 500 && c.msg == "internal error" && !strings.Contains(e.log.String(), "disk on fire") {
				t.Errorf("the detail of a 500 was not logged: %q", e.log.String())
			}
		})
	}
}

func TestPanicIsRecovered(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.fake.Lock()
	e.fake.PanicIn = "Queue"
	e.fake.Unlock()
	if msg := e.do("GET", "/api/v1/queue", "").expect(t, 500).errorText(t); msg != "internal error" {
		t.Errorf("message %q", msg)
	}
	if !strings.Contains(e.log.String(), "injected panic in Queue") {
		t.Errorf("panic not logged: %q", e.log.String())
	}
	// The server still answers.
	e.do("GET", "/api/v1/settings", "").expect(t, 200)
}

func TestTokens(t *testing.T) {
	e := newEnv(t, admin.Options{Token: "admin-tok", ReadOnlyToken: "ro-tok"})
	populate(e.fake)
	cases := []struct {
		name, method, path, body, auth string
		status                         int
	}{
		{"missing", "GET", "/api/v1/stats", "", "", 401},
		{"wrong", "GET", "/api/v1/stats", "", "Bearer nope", 401},
		{"prefix of the token", "GET", "/api/v1/stats", "", "Bearer admin-to", 401},
		{"basic instead of bearer", "GET", "/api/v1/stats", "", "Basic YWRtaW4tdG9rOg==", 401},
		{"admin GET", "GET", "/api/v1/stats", "", "Bearer admin-tok", 200},
		{"scheme case-insensitive", "GET", "/api/v1/stats", "", "bearer admin-tok", 200},
		{"admin PUT", "PUT", "/api/v1/settings", `{"queueMode":"locally"}`, "Bearer admin-tok", 200},
		{"admin POST", "POST", "/api/v1/queue/Q1/hold", "", "Bearer admin-tok", 204},
		{"read-only GET", "GET", "/api/v1/queue", "", "Bearer ro-tok", 200},
		{"read-only HEAD", "HEAD", "/api/v1/queue", "", "Bearer ro-tok", 200},
		{"read-only PUT", "PUT", "/api/v1/settings", `{"queueMode":"remotely"}`, "Bearer ro-tok", 403},
		{"read-only POST", "POST", "/api/v1/accounts", `{"address":"a@b.c","password":"p"}`, "Bearer ro-tok", 403},
		{"read-only DELETE", "DELETE", "/api/v1/accounts/demo@example.test", "", "Bearer ro-tok", 403},
		{"read-only queue action", "POST", "/api/v1/queue/Q1/retry", "", "Bearer ro-tok", 403},
		{"unknown path needs the token too", "GET", "/api/v1/nothing", "", "", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.auth != "" {
				hdr = append(hdr, "Authorization: "+c.auth)
			}
			r := e.do(c.method, c.path, c.body, hdr...).expect(t, c.status)
			if c.status == 401 {
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without a Bearer challenge: %q", r.header.Get("WWW-Authenticate"))
				}
				r.errorText(t)
			}
			if c.status == 403 {
				if msg := r.errorText(t); !strings.Contains(msg, "read-only") {
					t.Errorf("403 message %q", msg)
				}
			}
		})
	}
	// Refused requests never reached the API.
	if n := len(e.fake.CallsTo("UpdateSettings")); n != 1 {
		t.Errorf("UpdateSettings called %d times, want 1 (only the admin's)", n)
	}
	if n := len(e.fake.CallsTo("CreateAccount")) + len(e.fake.CallsTo("DeleteAccount")); n != 0 {
		t.Errorf("read-only writes reached the API %d times", n)
	}
}

// Token "" means no token is required; the endpoint then insists on a Host
// that is an IP literal or localhost, so a rebound DNS name cannot reach it.
func TestNoTokenRequiresLiteralHost(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.do("GET", "/api/v1/stats", "").expect(t, 200) // Host 127.0.0.1:port
	e.do("GET", "/api/v1/stats", "", "Host: localhost:8025").expect(t, 200)
	e.do("GET", "/api/v1/stats", "", "Host: [::1]:8025").expect(t, 200)
	msg := e.do("GET", "/api/v1/stats", "", "Host: rebind.attacker.test:8025").expect(t, 403).errorText(t)
	if !strings.Contains(msg, "Host") {
		t.Errorf("message %q", msg)
	}
	// With a token, any Host is fine.
	e2 := newEnv(t, admin.Options{Token: "t"})
	e2.do("GET", "/api/v1/stats", "", "Host: admin.example.test", "Authorization: Bearer t").expect(t, 200)
}

func TestCrossOriginWritesRefused(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.do("POST", "/api/v1/accounts", `{"address":"a@b.test","password":"p"}`, "Sec-Fetch-Site: cross-site").expect(t, 403).errorText(t)
	e.do("POST", "/api/v1/accounts", `{"address":"a@b.test","password":"p"}`, "Origin: https://evil.test").expect(t, 403)
	if n := len(e.fake.CallsTo("CreateAccount")); n != 0 {
		t.Fatalf("cross-origin request reached the API")
	}
	e.do("GET", "/api/v1/stats", "", "Sec-Fetch-Site: cross-site").expect(t, 200) // safe method
	e.do("POST", "/api/v1/accounts", `{"address":"a@b.test","password":"p"}`, "Sec-Fetch-Site: same-origin").expect(t, 201)
}

func TestSubmit(t *testing.T) {
	e := newEnv(t, admin.Options{Token: "admin-tok", SubmitLimit: 300})
	populate(e.fake)
	body := `{"to":["x@remote.test","y@remote.test"],"raw":"Subject: t\r\n\r\nhello\r\n"}`

	r := e.do("POST", "/api/v1/submit", body).expect(t, 401)
	if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic ") {
		t.Errorf("missing credentials: WWW-Authenticate %q", got)
	}
	r.errorText(t)
	if n := len(e.fake.CallsTo("Submit")); n != 0 {
		t.Fatalf("Submit called without credentials")
	}

	// The admin token is not an account's credentials.
	e.do("POST", "/api/v1/submit", body, "Authorization: Bearer admin-tok").expect(t, 401)

	wrong := "Authorization: Basic " + basic("demo@example.test", "nope")
	r = e.do("POST", "/api/v1/submit", body, wrong).expect(t, 401)
	if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic ") {
		t.Errorf("wrong password: WWW-Authenticate %q", got)
	}
	if msg := r.errorText(t); msg != "authentication failed" {
		t.Errorf("wrong password message %q", msg)
	}

	right := "Authorization: Basic " + basic("demo@example.test", "s3cret")
	// The client address the API gets is the connection's, never a header's.
	res := e.do("POST", "/api/v1/submit", body, right, "X-Forwarded-For: 203.0.113.9").expect(t, 202).object(t)
	wantKeys(t, "submit answer", res, "id")
	e.fake.Lock()
	sub := e.fake.Submitted
	e.fake.Unlock()
	if len(sub) != 1 || res["id"] != sub[0].ID || sub[0].User != "demo@example.test" || sub[0].Client.String() != "127.0.0.1" ||
		strings.Join(sub[0].To, ",") != "x@remote.test,y@remote.test" || string(sub[0].Raw) != "Subject: t\r\n\r\nhello\r\n" {
		t.Errorf("submitted %+v, answer %v", sub, res)
	}

	for name, c := range map[string]struct {
		body   string
		status int
		want   string
	}{
		"no recipients": {`{"to":[],"raw":"x"}`, 400, "recipient"},
		"empty rcpt":    {`{"to":[""],"raw":"x"}`, 400, "recipient"},
		"no message":    {`{"to":["a@b.test"]}`, 400, "raw"},
		"unknown field": {`{"to":["a@b.test"],"raw":"x","cc":[]}`, 400, "unknown field"},
		"over limit":    {`{"to":["a@b.test"],"raw":"` + strings.Repeat("x", 400) + `"}`, 413, "too large"},
	} {
		t.Run(name, func(t *testing.T) {
			msg := e.do("POST", "/api/v1/submit", c.body, right).expect(t, c.status).errorText(t)
			if !strings.Contains(msg, c.want) {
				t.Errorf("message %q, want %q in it", msg, c.want)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "homing_up 1")
	})
	e := newEnv(t, admin.Options{Metrics: metrics, ReadOnlyToken: "ro", Token: "adm"})
	r := e.do("GET", "/metrics", "", "Authorization: Bearer ro").expect(t, 200)
	if string(r.body) != "homing_up 1\n" {
		t.Errorf("metrics %q", r.body)
	}
	e.do("GET", "/metrics", "").expect(t, 401)

	none := newEnv(t, admin.Options{})
	none.do("GET", "/metrics", "").expect(t, 404).errorText(t)
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	e := newEnv(t, admin.Options{})
	r := e.do("POST", "/api/v1/cluster", "").expect(t, 405)
	if got := r.header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow %q", got)
	}
	r.errorText(t)
	r = e.do("PUT", "/api/v1/accounts/a@b.test", "").expect(t, 405)
	if got := r.header.Get("Allow"); got != "DELETE, GET, HEAD, PATCH" {
		t.Errorf("Allow %q", got)
	}
	if got := e.do("GET", "/api/v1/submit", "").expect(t, 405).header.Get("Allow"); got != "POST" {
		t.Errorf("Allow %q", got)
	}
	e.do("GET", "/api/v2/cluster", "").expect(t, 404).errorText(t)
	e.do("GET", "/", "").expect(t, 404).errorText(t)
	r = e.do("HEAD", "/api/v1/stats", "").expect(t, 200)
	if len(r.body) != 0 {
		t.Errorf("HEAD with a body")
	}
}

// The profiler is served only when asked for, behind the token and Host
// checks of the API (a DNS-rebound name must not read the command line);
// the console is served without a token, and / redirects to it.
func TestPprofAndConsoleMounts(t *testing.T) {
	e := newEnv(t, admin.Options{})
	e.do("GET", "/debug/pprof/cmdline", "").expect(t, 404)

	console := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("console " + r.URL.Path))
	})
	e = newEnv(t, admin.Options{Pprof: true, Console: console})
	if r := e.do("GET", "/debug/pprof/cmdline", "").expect(t, 200); len(r.body) == 0 {
		t.Error("pprof cmdline is empty")
	}
	e.do("GET", "/debug/pprof/cmdline", "", "Host: evil.invalid").expect(t, 403)
	if r := e.do("GET", "/console/app.js", "").expect(t, 200); string(r.body) != "console /console/app.js" {
		t.Errorf("console answered %q", r.body)
	}
	if r := e.do("GET", "/", "").expect(t, 200); string(r.body) != "console /console/" { // the client follows the redirect
		t.Errorf("/ led to %q, want the console's /console/", r.body)
	}

	e = newEnv(t, admin.Options{Pprof: true, Token: "sekret"})
	e.do("GET", "/debug/pprof/cmdline", "").expect(t, 401)
	e.do("GET", "/debug/pprof/cmdline", "", "Authorization: Bearer sekret").expect(t, 200)
}
