package admin_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
)

// healthAnswer is the body of /healthz and /readyz.
type healthAnswer struct {
	Status string        `json:"status"`
	Checks []admin.Check `json:"checks"`
}

func (r reply) health(t *testing.T) healthAnswer {
	t.Helper()
	var h healthAnswer
	if err := json.Unmarshal(r.body, &h); err != nil {
		t.Fatalf("health body %q: %v", r.body, err)
	}
	return h
}

// /healthz and /readyz need no token, on loopback or not; the checks'
// detail goes only to loopback clients (with a literal Host) and to
// token holders; a node that is not ready answers 503 with Retry-After.
func TestHealthEndpoints(t *testing.T) {
	e := newEnv(t, admin.Options{Token: "admintok", ReadOnlyToken: "readtok"})
	h := e.do("GET", "/healthz", "").expect(t, 200).health(t)
	if h.Status != "ok" || len(h.Checks) != 0 {
		t.Errorf("healthz %+v", h)
	}
	r := e.do("GET", "/readyz", "").expect(t, 200)
	if h := r.health(t); h.Status != "ready" || len(h.Checks) != 1 || h.Checks[0].Detail != "open" || !h.Checks[0].OK {
		t.Errorf("readyz %+v", h)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	e.do("HEAD", "/readyz", "").expect(t, 200)

	e.fake.Lock()
	e.fake.Ready = admin.Readiness{Checks: []admin.Check{{Name: "queue", OK: true, Detail: "open"},
		{Name: "partitions", Detail: "failed to open: partition 3 (/var/lib/homing/accounts/p0003: damaged)"}}}
	e.fake.Unlock()
	r = e.do("GET", "/readyz", "").expect(t, 503)
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	if h := r.health(t); h.Status != "not ready" || len(h.Checks) != 2 || h.Checks[1].OK || h.Checks[1].Detail == "" {
		t.Errorf("not ready %+v", h)
	}
	// A rebound DNS name on loopback: no detail (but the status).
	if h := e.do("GET", "/readyz", "", "Host: evil.example").expect(t, 503).health(t); h.Checks[1].Detail != "" || h.Checks[1].Name != "partitions" {
		t.Errorf("detail for a foreign Host: %+v", h)
	}
	// ... unless it has a token.
	for _, tok := range []string{"admintok", "readtok"} {
		if h := e.do("GET", "/readyz", "", "Host: evil.example", "Authorization: Bearer "+tok).expect(t, 503).health(t); h.Checks[1].Detail == "" {
			t.Errorf("no detail with token %s", tok)
		}
	}
	e.do("GET", "/readyz", "", "Host: evil.example", "Authorization: Bearer wrong").expect(t, 503)
	// Other methods go through the token check, then 405.
	e.do("POST", "/readyz", "", "Authorization: Bearer admintok").expect(t, 405)
	e.do("POST", "/healthz", "").expect(t, 401)
	if n := len(e.fake.CallsTo("Readiness")); n != 7 {
		t.Errorf("Readiness asked %d times, want once per GET/HEAD /readyz (7)", n)
	}
}

// A client off loopback (a load balancer) gets the answer without a token
// and without the detail.
func TestReadyzOffLoopback(t *testing.T) {
	f := admintest.NewFake()
	f.Ready = admin.Readiness{Checks: []admin.Check{{Name: "cluster", Detail: "not joined: no seed has answered"}}}
	h := admin.NewHandler(f, admin.Options{Token: "admintok"})
	for _, c := range []struct {
		path, auth string
		status     int
		detail     bool
	}{
		{"/healthz", "", 200, false},
		{"/readyz", "", 503, false},
		{"/readyz", "Bearer admintok", 503, true},
		{"/api/v1/stats", "", 401, false},
	} {
		req := httptest.NewRequest("GET", "http://node1.example:8025"+c.path, nil)
		req.RemoteAddr = "192.0.2.10:40000"
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != c.status {
			t.Errorf("%s (%q): %d, want %d: %s", c.path, c.auth, w.Code, c.status, w.Body)
			continue
		}
		if c.path != "/readyz" {
			continue
		}
		var body healthAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Checks) != 1 || body.Checks[0].Name != "cluster" ||
			(body.Checks[0].Detail != "") != c.detail {
			t.Errorf("%s (%q): %s %v", c.path, c.auth, w.Body, err)
		}
	}
}

// The client reads a 503 of /readyz as an answer, not an error.
func TestClientReadiness(t *testing.T) {
	e := newEnv(t, admin.Options{Token: "tok"})
	c := e.client("")
	ctx := context.Background()
	r, err := c.Readiness(ctx)
	if err != nil || !r.Ready || len(r.Checks) != 1 {
		t.Fatalf("ready: %+v %v", r, err)
	}
	if err := c.Healthy(ctx); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	e.fake.Lock()
	e.fake.Ready = admin.Readiness{Checks: []admin.Check{{Name: "running", Detail: "shutting down"}}}
	e.fake.Unlock()
	r, err = c.Readiness(ctx)
	if err != nil || r.Ready || len(r.Checks) != 1 || r.Checks[0].Detail != "shutting down" {
		t.Fatalf("not ready: %+v %v", r, err)
	}
	e.srv.Close()
	if _, err := c.Readiness(ctx); err == nil {
		t.Errorf("no error from a closed server")
	}
}
