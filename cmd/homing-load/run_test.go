package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
	"github.com/homing-mail/homing/testkit/fakemx"
)

// fakeNode is a fake MX plus the admin API over a fake whose
// deliveredLocal follows what the MX accepted (on top of a baseline, as
// on a node that has run before).
type fakeNode struct {
	mta   *fakemx.Server
	api   *admintest.Fake
	admin *httptest.Server
}

func newFakeNode(t *testing.T, token string) *fakeNode {
	t.Helper()
	n := &fakeNode{mta: fakemx.Start(t), api: admintest.NewFake()}
	n.api.StatsFunc = func() admin.Stats {
		return admin.Stats{DeliveredLocal: 1000 + recipientsAccepted(n.mta), Bounced: 7, StoreLatencyP50: 0.004, StoreLatencyP99: 0.009}
	}
	n.admin = httptest.NewServer(admin.NewHandler(n.api, admin.Options{Token: token}))
	t.Cleanup(n.admin.Close)
	return n
}

func (n *fakeNode) config(t *testing.T, args ...string) config {
	t.Helper()
	cfg, err := parseArgs(append([]string{"--smtp", n.mta.Addr, "--admin", n.admin.URL, "--timeout", "30s"}, args...), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRunAgainstRunningNode(t *testing.T) {
	n := newFakeNode(t, "tok")
	cfg := n.config(t, "--token", "tok", "--n", "300", "--c", "7", "--accounts", "13", "--size", "2000")
	rep, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Accepted != 300 || rep.Delivered != 300 || rep.TempFailures+rep.PermFailures+rep.IOErrors+rep.Unsent != 0 {
		t.Fatalf("report %+v", rep)
	}
	if rep.AcceptedPerSec <= 0 || rep.DeliveredPerSec <= 0 || rep.AcceptWindowSec <= 0 || rep.DeliverWindowSec < rep.AcceptWindowSec {
		t.Errorf("rates %+v", rep)
	}
	if rep.Data250P50Ms <= 0 || rep.Data250P99Ms < rep.Data250P50Ms || rep.Data250MaxMs < rep.Data250P99Ms {
		t.Errorf("latencies p50 %v p99 %v max %v", rep.Data250P50Ms, rep.Data250P99Ms, rep.Data250MaxMs)
	}
	if rep.EnvelopeP50Ms <= 0 || rep.EnvelopeP99Ms < rep.EnvelopeP50Ms {
		t.Errorf("envelope p50 %v p99 %v", rep.EnvelopeP50Ms, rep.EnvelopeP99Ms)
	}
	if m := rep.MachineCPU; m == nil || m.BusyPercent <= 0 || m.BusyPercent > 100 || m.BusyPercent+m.IdlePercent+m.IOWaitPercent < 99 {
		t.Errorf("machine CPU %+v", rep.MachineCPU)
	}
	if rep.StoreP50Ms != 4 || rep.StoreP99Ms != 9 || rep.Bounced != 0 {
		t.Errorf("from stats: p50 %v p99 %v bounced %v", rep.StoreP50Ms, rep.StoreP99Ms, rep.Bounced)
	}
	if rep.AccountsCreated != 13 || rep.Params.C != 7 || rep.Machine.NProc < 1 {
		t.Errorf("report %+v", rep)
	}

	msgs := n.mta.Messages()
	sizes := map[int]int{}     // message size -> count
	byRcpt := map[string]int{} // accepted per recipient
	for _, m := range msgs {
		sizes[len(m.Data)]++
		for _, r := range m.To {
			byRcpt[r]++
		}
	}
	if len(sizes) != 1 || sizes[2000] != 300 {
		t.Errorf("message sizes %v, want all 2000 bytes", sizes)
	}
	// Round-robin: 300 = 13*23 + 1, so user0000 gets 24 and the rest 23.
	for i := range 13 {
		want := 23
		if i == 0 {
			want = 24
		}
		if got := byRcpt[fmt.Sprintf("user%04d@example.test", i)]; got != want {
			t.Errorf("user%04d got %d messages, want %d", i, got, want)
		}
	}
	if c := n.mta.Connections(); c != 7 {
		t.Errorf("%d connections, want 7 persistent sessions", c)
	}
	if sample := msgs[0].Data; !strings.Contains(string(sample), "\r\nMessage-ID: <") {
		t.Errorf("sample message %q", sample[:200])
	}
	// Every account was created with the same imported argon2id hash.
	calls := n.api.CallsTo("CreateAccount")
	if len(calls) != 13 {
		t.Fatalf("%d accounts created", len(calls))
	}
	hash := calls[0].Args[0].(admin.CreateAccount).PasswordHash
	for _, c := range calls {
		if req := c.Args[0].(admin.CreateAccount); req.PasswordHash != hash || req.Password != "" || !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Errorf("account request %+v", req)
		}
	}

	var js, txt strings.Builder
	if err := rep.writeJSON(&js); err != nil || !strings.Contains(js.String(), `"acceptedPerSec": `) {
		t.Errorf("JSON report %q %v", js.String(), err)
	}
	if err := rep.writeText(&txt); err != nil || !strings.Contains(txt.String(), "accepted          300 of 300 in ") ||
		!strings.Contains(txt.String(), "DATA->250         p50 ") {
		t.Errorf("text report:\n%s", txt.String())
	}
}

// Refusals are counted by class, not retried, not counted as accepted,
// and do not cost the connection.
func TestRunCountsRefusals(t *testing.T) {
	n := newFakeNode(t, "")
	n.mta.FailRcpt(func(to string) bool { return to == "user0003@example.test" },
		&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	n.mta.FailDataFunc(func(k int) *smtp.SMTPError {
		if k%10 == 0 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again"}
		}
		return nil
	})
	cfg := n.config(t, "--n", "130", "--c", "4", "--accounts", "13", "--size", "1000")
	rep, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// user0003 gets 10 of 130 messages: 10 refused at RCPT; of the 120
	// DATA commands every tenth is refused: 12; 108 accepted.
	if rep.PermFailures != 10 || rep.TempFailures != 12 || rep.Accepted != 108 || rep.IOErrors != 0 {
		t.Fatalf("report 5xx=%d 4xx=%d accepted=%d io=%d", rep.PermFailures, rep.TempFailures, rep.Accepted, rep.IOErrors)
	}
	if rep.Delivered != 108 || !rep.OK() {
		t.Errorf("delivered %d, ok %v", rep.Delivered, rep.OK())
	}
	if c := n.mta.Connections(); c != 4 {
		t.Errorf("%d connections: refusals should not cost the connection", c)
	}
	joined := strings.Join(rep.ErrorSamples, "|")
	if !strings.Contains(joined, "no such user") || !strings.Contains(joined, "try again") || len(rep.ErrorSamples) > maxErrorSamples {
		t.Errorf("error samples %q", rep.ErrorSamples)
	}
}

// A server that hangs up at once: every message is a connection error,
// each counted once, and the run is not a valid measurement.
func TestRunConnectionFailures(t *testing.T) {
	n := newFakeNode(t, "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	defer func() { l.Close(); <-done }()
	cfg, err := parseArgs([]string{"--smtp", l.Addr().String(), "--admin", n.admin.URL, "--n", "20", "--c", "3", "--accounts", "2", "--timeout", "5s"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.IOErrors != 20 || rep.Accepted != 0 || rep.OK() {
		t.Errorf("report io=%d accepted=%d ok=%v", rep.IOErrors, rep.Accepted, rep.OK())
	}
}

// Canceling the run stops sending: the rest is counted as unsent.
func TestRunCanceled(t *testing.T) {
	n := newFakeNode(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	n.mta.FailDataFunc(func(k int) *smtp.SMTPError {
		if k == 5 {
			cancel()
		}
		return nil
	})
	cfg := n.config(t, "--n", "1000", "--c", "1", "--accounts", "1")
	rep, err := run(ctx, cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err %v", err)
	}
	if rep == nil || rep.Accepted+rep.Unsent+rep.IOErrors != 1000 || rep.Unsent < 900 {
		t.Fatalf("report %+v", rep)
	}
}
