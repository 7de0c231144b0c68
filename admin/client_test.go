package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
)

// client returns a Client for the env's server using its connection pool
// (closed with the server, so no goroutine outlives the test).
func (e *env) client(token string) *admin.Client {
	c := admin.NewClient(e.srv.URL, token)
	c.HTTP = e.srv.Client()
	return c
}

func TestNewClientBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8025":          "http://127.0.0.1:8025",
		"http://127.0.0.1:8025":   "http://127.0.0.1:8025",
		"http://127.0.0.1:8025/":  "http://127.0.0.1:8025",
		" https://admin.test:443": "https://admin.test:443",
		"[::1]:8025":              "http://[::1]:8025",
	} {
		if got := admin.NewClient(in, "").BaseURL; got != want {
			t.Errorf("NewClient(%q).BaseURL = %q, want %q", in, got, want)
		}
	}
}

// Every method goes over HTTP to the handler and back, and returns what
// the API returned.
func TestClientRoundTrip(t *testing.T) {
	e := newEnv(t, admin.Options{Token: "tok"})
	populate(e.fake)
	c := e.client("tok")
	ctx := context.Background()
	f := e.fake

	cl, err := c.Cluster(ctx)
	if err != nil || !reflect.DeepEqual(cl, f.ClusterInfo) {
		t.Errorf("Cluster = %+v, %v; want %+v", cl, err, f.ClusterInfo)
	}

	created, err := c.CreateAccount(ctx, admin.CreateAccount{Address: "new@example.test", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", QuotaBytes: 5})
	if err != nil || created.Address != "new@example.test" || created.QuotaBytes != 5 || created.Created.IsZero() {
		t.Errorf("CreateAccount = %+v, %v", created, err)
	}
	if got := f.CallsTo("CreateAccount")[0].Args[0].(admin.CreateAccount); got.PasswordHash != "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA" || got.Password != "" {
		t.Errorf("CreateAccount sent %+v", got)
	}

	as, err := c.Accounts(ctx)
	if err != nil || len(as) != 2 || as[0].Address != "demo@example.test" || as[1] != created {
		t.Errorf("Accounts = %+v, %v", as, err)
	}
	a, err := c.Account(ctx, "demo@example.test")
	if err != nil || !reflect.DeepEqual(a, f.AccountMap["demo@example.test"]) {
		t.Errorf("Account = %+v, %v", a, err)
	}
	ms, err := c.Messages(ctx, "demo@example.test")
	if err != nil || !reflect.DeepEqual(ms, f.Mailboxes["demo@example.test"]) {
		t.Errorf("Messages = %+v, %v", ms, err)
	}
	raw, err := c.RawMessage(ctx, "demo@example.test", "M1")
	if err != nil || string(raw) != "Subject: hi\r\n\r\nbody\r\n" {
		t.Errorf("RawMessage = %q, %v", raw, err)
	}

	q, err := c.Queue(ctx)
	if err != nil || !reflect.DeepEqual(q, f.QueueList) {
		t.Errorf("Queue = %+v, %v", q, err)
	}
	qe, err := c.QueueEntry(ctx, "Q1")
	if err != nil || !reflect.DeepEqual(qe, f.QueueList[0]) {
		t.Errorf("QueueEntry = %+v, %v", qe, err)
	}
	for _, action := range []string{"hold", "release", "retry", "delete"} {
		if err := c.QueueAction(ctx, "Q1", action); err != nil {
			t.Errorf("QueueAction %s: %v", action, err)
		}
	}
	var acts []string
	for _, call := range f.CallsTo("QueueAction") {
		acts = append(acts, call.Args[1].(string))
	}
	if strings.Join(acts, ",") != "hold,release,retry,delete" {
		t.Errorf("actions reaching the API: %v", acts)
	}

	s, err := c.Settings(ctx)
	if err != nil || s.QueueMode != "locally" || s.Name != "fake" {
		t.Errorf("Settings = %+v, %v", s, err)
	}
	mode := admin.QueueModeLocallyForOthers
	s, err = c.UpdateSettings(ctx, admin.SettingsUpdate{QueueMode: &mode})
	if err != nil || s.QueueMode != mode {
		t.Errorf("UpdateSettings = %+v, %v", s, err)
	}

	act, err := c.Actors(ctx)
	if err != nil || !reflect.DeepEqual(act, map[string]int{"account": 3, "queue": 2}) {
		t.Errorf("Actors = %v, %v", act, err)
	}
	st, err := c.Stats(ctx)
	if err != nil || !reflect.DeepEqual(st, f.Counters) {
		t.Errorf("Stats = %+v, %v; want %+v", st, err, f.Counters)
	}

	id, err := c.Submit(ctx, "demo@example.test", "s3cret", []string{"x@remote.test"}, []byte("Subject: s\r\n\r\nx\r\n"))
	if err != nil || id != "SUB1" {
		t.Errorf("Submit = %q, %v", id, err)
	}

	if err := c.DeleteAccount(ctx, "new@example.test"); err != nil {
		t.Errorf("DeleteAccount: %v", err)
	}
	f.Lock()
	_, ok := f.AccountMap["new@example.test"]
	f.Unlock()
	if ok {
		t.Errorf("account still there after DeleteAccount")
	}
}

func TestClientErrors(t *testing.T) {
	e := newEnv(t, admin.Options{Token: "tok"})
	populate(e.fake)
	ctx := context.Background()

	var ae *admin.Error
	_, err := e.client("tok").Account(ctx, "ghost@example.test")
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Message != "account ghost@example.test: not found" {
		t.Errorf("Account of a missing address: %#v", err)
	}
	_, err = e.client("wrong").Stats(ctx)
	if !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("wrong token: %#v", err)
	}
	_, err = e.client("tok").Submit(ctx, "demo@example.test", "bad", []string{"x@y.test"}, []byte("x"))
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Message != "authentication failed" {
		t.Errorf("Submit with a wrong password: %#v", err)
	}
	e.fake.SetErr("Stats", fmt.Errorf("store: %w", mail.ErrExists))
	_, err = e.client("tok").Stats(ctx)
	if !errors.As(err, &ae) || ae.Status != 409 {
		t.Errorf("409: %#v", err)
	}
	// An unknown action never reaches the server.
	err = e.client("tok").QueueAction(ctx, "Q1", "explode")
	if !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("unknown action: %#v", err)
	}
	if n := len(e.fake.CallsTo("QueueAction")); n != 0 {
		t.Errorf("unknown action reached the API")
	}
}

// Answers that are not the API's JSON (a proxy's error page, say) still
// become *Error with the status.
func TestClientNonJSONError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/stats":
			http.Error(w, "upstream down", http.StatusBadGateway)
		case "/api/v1/settings":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "<html>busy</html>")
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, "{not json")
		}
	}))
	defer srv.Close()
	c := admin.NewClient(srv.URL, "")
	c.HTTP = srv.Client()
	var ae *admin.Error
	if _, err := c.Stats(context.Background()); !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "upstream down" {
		t.Errorf("plain-text 502: %#v", err)
	}
	if _, err := c.Settings(context.Background()); !errors.As(err, &ae) || ae.Status != 503 || ae.Message != "service unavailable" {
		t.Errorf("HTML 503: %#v", err)
	}
	if _, err := c.Cluster(context.Background()); err == nil || errors.As(err, &ae) {
		t.Errorf("undecodable 200: %v", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	c := admin.NewClient(url, "")
	c.HTTP = &http.Client{Transport: &http.Transport{}}
	defer c.HTTP.CloseIdleConnections()
	_, err := c.Stats(context.Background())
	var ae *admin.Error
	if err == nil || errors.As(err, &ae) || !strings.Contains(err.Error(), "GET /api/v1/stats") {
		t.Errorf("unreachable server: %v", err)
	}
}
