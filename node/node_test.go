package node_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"go.uber.org/goleak"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/wait"
)

func client(n *node.Node) *admin.Client { return admin.NewClient("http://"+n.AdminAddr(), "") }

func createAccount(t *testing.T, c *admin.Client, addr, pw string, quota int64) {
	t.Helper()
	if _, err := c.CreateAccount(context.Background(), admin.CreateAccount{Address: addr, Password: pw, QuotaBytes: quota}); err != nil {
		t.Fatalf("creating %s: %v", addr, err)
	}
}

// waitMessages polls the account's mailbox until it holds n messages.
func waitMessages(t *testing.T, c *admin.Client, addr string, n int) []admin.Message {
	t.Helper()
	var ms []admin.Message
	wait.For(t, 60*time.Second, func() bool {
		var err error
		ms, err = c.Messages(context.Background(), addr)
		return err == nil && len(ms) >= n
	}, "%s has %d messages, want %d", addr, len(ms), n)
	return ms
}

func TestDeliveryToMailbox(t *testing.T) {
	n := testkit.StartNode(t, "n1")
	c := client(n)
	createAccount(t, c, "alice@example.test", "secret-pw", 0)

	msg := testkit.Message("bob@remote.test", "alice@example.test", "hello", "first line\nsecond line")
	reply, err := testkit.Send(n.SMTPAddr(), "bob@remote.test", []string{"Alice@Example.TEST"}, msg)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if !strings.Contains(reply, "queued as") {
		t.Fatalf("reply %q does not name the queue id", reply)
	}
	ms := waitMessages(t, c, "alice@example.test", 1)
	if len(ms) != 1 || ms[0].Folder != "INBOX" {
		t.Fatalf("messages = %+v, want one in INBOX", ms)
	}
	raw, err := c.RawMessage(context.Background(), "alice@example.test", ms[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(withoutAuthResults(raw), []byte("Received: from ")) {
		t.Fatalf("stored message does not start with a Received header (after the checks' Authentication-Results):\n%s", raw)
	}
	if !bytes.HasSuffix(raw, msg) {
		t.Fatalf("stored message does not end with the sent bytes:\n%s", raw)
	}
	if ms[0].Size != int64(len(raw)) {
		t.Fatalf("listed size %d, stored %d bytes", ms[0].Size, len(raw))
	}
	// The queue is empty once the message is stored.
	wait.For(t, 5*time.Second, func() bool {
		q, err := c.Queue(context.Background())
		return err == nil && len(q) == 0
	}, "queue not empty after delivery")
}

func TestUnknownAccountAndRelayDenied(t *testing.T) {
	n := testkit.StartNode(t, "n1")
	msg := testkit.Message("bob@remote.test", "x@example.test", "x", "x")
	_, err := testkit.Send(n.SMTPAddr(), "bob@remote.test", []string{"nobody@example.test"}, msg)
	assertSMTPCode(t, err, 550, "5.1.1")
	_, err = testkit.Send(n.SMTPAddr(), "bob@remote.test", []string{"carol@elsewhere.test"}, msg)
	assertSMTPCode(t, err, 554, "5.7.1")
}

func assertSMTPCode(t *testing.T, err error, code int, enh string) {
	t.Helper()
	se, ok := err.(*gosmtp.SMTPError)
	if !ok {
		t.Fatalf("err = %v (%T), want SMTP %d %s", err, err, code, enh)
	}
	got := fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	if se.Code != code || got != enh {
		t.Fatalf("reply %d %s %q, want %d %s", se.Code, got, se.Message, code, enh)
	}
}

// submit sends mail generated on the node by an account (POST /api/v1/submit).
func submit(t *testing.T, c *admin.Client, user, pw string, to []string, raw []byte) string {
	t.Helper()
	id, err := c.Submit(context.Background(), user, pw, to, raw)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return id
}

func withRoute(domain, addr string) testkit.NodeOption {
	return testkit.WithConfig(func(c *node.Config) { c.Routing.Routes[domain] = addr })
}

func TestRelayToSinkInOneTransaction(t *testing.T) {
	mx := fakemx.Start(t)
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr))
	c := client(n)
	createAccount(t, c, "alice@example.test", "pw-first-1", 0)

	raw := testkit.Message("alice@example.test", "bob@remote.test", "out", "to the world")
	submit(t, c, "alice@example.test", "pw-first-1", []string{"bob@remote.test", "carol@remote.test"}, raw)
	got := mx.WaitMessages(t, 1, 20*time.Second)
	if len(got[0].To) != 2 {
		t.Fatalf("MX got recipients %v in its first transaction, want both in one", got[0].To)
	}
	if got[0].From != "alice@example.test" || !bytes.HasSuffix(got[0].Data, raw) {
		t.Fatalf("MX got from=%q data=%q", got[0].From, got[0].Data)
	}
	wait.For(t, 5*time.Second, func() bool {
		q, err := c.Queue(context.Background())
		return err == nil && len(q) == 0
	}, "queue not empty after relay")
}

func TestTemporaryFailureThenSuccess(t *testing.T) {
	mx := fakemx.Start(t)
	mx.FailRcpt(func(string) bool { return true }, &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"})
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr))
	c := client(n)
	createAccount(t, c, "alice@example.test", "pw-first-1", 0)
	id := submit(t, c, "alice@example.test", "pw-first-1", []string{"bob@remote.test"},
		testkit.Message("alice@example.test", "bob@remote.test", "retry", "body"))

	var e admin.QueueEntry
	wait.For(t, 10*time.Second, func() bool {
		var err error
		e, err = c.QueueEntry(context.Background(), id)
		return err == nil && e.State == "deferred"
	}, "message not deferred: %+v", e)
	if !strings.Contains(e.LastError, "451") || e.Attempts < 1 || e.NextAttempt == nil {
		t.Fatalf("deferred entry = %+v, want lastError with 451, attempts, nextAttempt", e)
	}
	mx.FailRcpt(nil, nil)
	got := mx.WaitMessages(t, 1, 20*time.Second)
	if got[0].To[0] != "bob@remote.test" {
		t.Fatalf("MX got %v", got[0].To)
	}
	wait.For(t, 5*time.Second, func() bool {
		_, err := c.QueueEntry(context.Background(), id)
		return err != nil
	}, "delivered message still queued")
}

func TestPermanentFailureBouncesToLocalSender(t *testing.T) {
	mx := fakemx.Start(t)
	mx.FailRcpt(func(r string) bool { return strings.HasPrefix(r, "gone@") },
		&gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user here"})
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr))
	c := client(n)
	createAccount(t, c, "alice@example.test", "pw-first-1", 0)
	raw := testkit.Message("alice@example.test", "gone@remote.test", "doomed", "this will bounce")
	id := submit(t, c, "alice@example.test", "pw-first-1", []string{"gone@remote.test", "ok@remote.test"}, raw)

	ms := waitMessages(t, c, "alice@example.test", 1)
	dsn, err := c.RawMessage(context.Background(), "alice@example.test", ms[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"multipart/report; report-type=delivery-status",
		"Final-Recipient: rfc822; gone@remote.test",
		"Action: failed",
		"Status: 5.1.1",
		"Diagnostic-Code: smtp; 550 5.1.1",
		"Subject: doomed", // the original is returned
	} {
		if !bytes.Contains(dsn, []byte(want)) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
	if bytes.Contains(dsn, []byte("Final-Recipient: rfc822; ok@remote.test")) {
		t.Errorf("DSN reports the delivered recipient as failed:\n%s", dsn)
	}
	if got := mx.Messages(); len(got) != 1 || len(got[0].To) != 1 || got[0].To[0] != "ok@remote.test" {
		t.Fatalf("MX got %+v, want the message for ok@remote.test only", got)
	}
	wait.For(t, 5*time.Second, func() bool {
		_, err := c.QueueEntry(context.Background(), id)
		return err != nil
	}, "bounced message still queued")
}

func TestOverQuotaIsTemporaryThenPermanent(t *testing.T) {
	n := testkit.StartNode(t, "n1", testkit.WithConfig(func(c *node.Config) {
		c.Queue.OverQuotaTimeout = 1500 * time.Millisecond
	}))
	c := client(n)
	createAccount(t, c, "small@example.test", "pw-second-1", 100)
	createAccount(t, c, "sender@example.test", "pw-third-1", 0)
	raw := testkit.Message("sender@example.test", "small@example.test", "too big", strings.Repeat("x", 200))
	id := submit(t, c, "sender@example.test", "pw-third-1", []string{"small@example.test"}, raw)

	var e admin.QueueEntry
	wait.For(t, 10*time.Second, func() bool {
		var err error
		e, err = c.QueueEntry(context.Background(), id)
		return err == nil && e.State == "deferred"
	}, "over-quota message not deferred: %+v", e)
	if !strings.Contains(e.LastError, "4.2.2") {
		t.Fatalf("lastError %q, want 4.2.2 mailbox full", e.LastError)
	}
	ms := waitMessages(t, c, "sender@example.test", 1)
	dsn, _ := c.RawMessage(context.Background(), "sender@example.test", ms[0].ID)
	if !bytes.Contains(dsn, []byte("Status: 5.2.2")) {
		t.Fatalf("DSN lacks Status: 5.2.2:\n%s", dsn)
	}
	if got, _ := c.Messages(context.Background(), "small@example.test"); len(got) != 0 {
		t.Fatalf("over-quota mailbox got %d messages", len(got))
	}
}

func TestRestartWithQueuedMail(t *testing.T) {
	mx := fakemx.Start(t)
	mx.FailRcpt(func(string) bool { return true }, &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 4, 2}, Message: "busy"})
	data := t.TempDir()
	opts := []testkit.NodeOption{withRoute("remote.test", mx.Addr), testkit.WithConfig(func(c *node.Config) {
		c.Store.DataDir = data
		c.Queue.MinBackoff, c.Queue.MaxBackoff = time.Hour, time.Hour // no retry before the restart
	})}
	n1, err := node.Start(context.Background(), withOpts(testkit.TestConfig(t, "n1"), opts...))
	if err != nil {
		t.Fatal(err)
	}
	c := client(n1)
	createAccount(t, c, "alice@example.test", "pw-first-1", 0)
	id := submit(t, c, "alice@example.test", "pw-first-1", []string{"bob@remote.test"},
		testkit.Message("alice@example.test", "bob@remote.test", "persist", "across restarts"))
	wait.For(t, 10*time.Second, func() bool {
		e, err := c.QueueEntry(context.Background(), id)
		return err == nil && e.State == "deferred"
	}, "not deferred before restart")
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}

	mx.FailRcpt(nil, nil)
	n2 := testkit.StartNode(t, "n1", append(opts, testkit.WithConfig(func(c *node.Config) {
		c.Queue.MinBackoff, c.Queue.MaxBackoff = 100*time.Millisecond, time.Second
	}))...)
	c2 := client(n2)
	e, err := c2.QueueEntry(context.Background(), id)
	if err != nil {
		t.Fatalf("queued message not recovered after restart: %v", err)
	}
	if e.Recipients[0].State != "deferred" {
		t.Fatalf("recovered recipient state %q, want deferred", e.Recipients[0].State)
	}
	// Retry now instead of waiting for the hour-long backoff recorded before.
	if err := c2.QueueAction(context.Background(), id, "retry"); err != nil {
		t.Fatal(err)
	}
	mx.WaitMessages(t, 1, 20*time.Second)
}

func withOpts(cfg node.Config, opts ...testkit.NodeOption) node.Config {
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

func TestMain(m *testing.M) {
	cleanup, err := buildBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	if code == 0 {
		// No goroutine outlives the tests: every node, listener, fake MX
		// and child process a test starts is stopped by its cleanups.
		if err := goleak.Find(goleakOptions...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// goleakOptions ignores protoactor's dead-letter log throttle, which keeps
// a goroutine for one DeadLetterThrottleInterval (1 s) after the first dead
// letter of a period and ends by itself (as in package actors).
var goleakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
}

// The submission listener: AUTH required before MAIL, then an account may
// relay; STARTTLS is offered with a self-signed certificate when none is
// configured.
func TestSubmissionAuthRelays(t *testing.T) {
	mx := fakemx.Start(t)
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr), testkit.WithConfig(func(c *node.Config) {
		c.Listen.Submission = "127.0.0.1:0"
	}))
	createAccount(t, client(n), "alice@example.test", "pw-for-tests-123", 0)
	c, err := gosmtp.Dial(n.SubmissionAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("mua.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("submission does not offer STARTTLS")
	}
	err = c.Mail("alice@example.test", nil)
	assertSMTPCode(t, err, 530, "5.7.0")
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.test", "pw-for-tests-123")); err != nil {
		t.Fatalf("AUTH PLAIN: %v", err)
	}
	msg := testkit.Message("alice@example.test", "bob@remote.test", "submitted", "via 587")
	if err := c.Mail("alice@example.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(msg)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := mx.WaitMessages(t, 1, 20*time.Second)
	if got[0].From != "alice@example.test" || !bytes.Contains(got[0].Data, []byte("ESMTPA")) {
		t.Fatalf("MX got from %q:\n%s", got[0].From, got[0].Data)
	}
}

// Account rules run in the account actor at delivery: file into a folder,
// forward a copy (marked Delivered-To), and an RFC 3834 vacation reply once
// per sender, from the null sender.
func TestAccountRules(t *testing.T) {
	mx := fakemx.Start(t)
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr))
	c := client(n)
	createAccount(t, c, "alice@example.test", "pw-for-tests-123", 0)
	createAccount(t, c, "carol@example.test", "pw-third-123", 0)
	_, err := c.SetAccountRules(context.Background(), "alice@example.test", []byte(`[
	  {"name":"news","priority":10,"conditions":[{"field":"subject","op":"contains","value":"news"}],
	   "actions":[{"kind":"folder","value":"News"}]},
	  {"name":"copy","actions":[{"kind":"forward","value":"carol@example.test"}]},
	  {"name":"away","actions":[{"kind":"vacation","value":"I am away until Monday.","params":{"days":"7"}}]}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetAccountRules(context.Background(), "alice@example.test", []byte(`[{"name":"x","actions":[{"kind":"launch"}]}]`)); err == nil {
		t.Fatal("an invalid rule was accepted")
	}
	for i := 0; i < 2; i++ {
		msg := testkit.Message("bob@remote.test", "alice@example.test", "daily news", "read all about it")
		if _, err := testkit.Send(n.SMTPAddr(), "bob@remote.test", []string{"alice@example.test"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	ms := waitMessages(t, c, "alice@example.test", 2)
	for _, m := range ms {
		if m.Folder != "News" {
			t.Errorf("message %s filed in %q, want News", m.ID, m.Folder)
		}
	}
	copies := waitMessages(t, c, "carol@example.test", 2)
	raw, _ := c.RawMessage(context.Background(), "carol@example.test", copies[0].ID)
	if !bytes.Contains(raw, []byte("Delivered-To: alice@example.test")) {
		t.Errorf("forwarded copy lacks Delivered-To:\n%s", raw)
	}
	replies := mx.WaitMessages(t, 1, 20*time.Second)
	if replies[0].From != "" || replies[0].To[0] != "bob@remote.test" || !bytes.Contains(replies[0].Data, []byte("Auto-Submitted: auto-replied")) ||
		!bytes.Contains(replies[0].Data, []byte("I am away until Monday.")) {
		t.Fatalf("auto-reply from %q to %v:\n%s", replies[0].From, replies[0].To, replies[0].Data)
	}
	// Only once per sender: the second message got no reply.
	wait.For(t, 10*time.Second, func() bool {
		q, err := c.Queue(context.Background())
		return err == nil && len(q) == 0
	}, "queue not empty")
	if got := len(mx.Messages()); got != 1 {
		t.Fatalf("%d auto-replies to one sender, want 1", got)
	}
}

// /metrics has the series operators watch: SMTP sessions and replies by
// code, queue depth and age, delivery latency, relay results by domain,
// actor counts, members by state, partition moves.
func TestMetrics(t *testing.T) {
	mx := fakemx.Start(t)
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr))
	c := client(n)
	createAccount(t, c, "alice@example.test", "pw-for-tests-123", 0)
	if _, err := testkit.Send(n.SMTPAddr(), "x@remote.test", []string{"alice@example.test"},
		testkit.Message("x@remote.test", "alice@example.test", "m", "m")); err != nil {
		t.Fatal(err)
	}
	submit(t, c, "alice@example.test", "pw-for-tests-123", []string{"bob@remote.test"}, testkit.Message("alice@example.test", "bob@remote.test", "r", "r"))
	mx.WaitMessages(t, 1, 20*time.Second)
	waitMessages(t, c, "alice@example.test", 1)
	var body string
	wait.For(t, 10*time.Second, func() bool {
		resp, err := http.Get("http://" + n.AdminAddr() + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		// The relay's result is counted when the answer comes, the
		// queue's depth when the message has left the queue: a moment
		// later.
		return strings.Contains(body, `homing_relay_results_total{domain="remote.test",outcome="delivered"} 1`) &&
			strings.Contains(body, "homing_queue_messages 0")
	}, "relay result by domain and the empty queue not in /metrics")
	for _, want := range []string{
		"homing_smtp_sessions_total", `homing_smtp_replies_total{`, "homing_queue_messages 0",
		"homing_queue_oldest_seconds 0", "homing_delivery_latency_seconds_bucket", `homing_actors_active{kind="queue"} 1`,
		`homing_cluster_members{state="alive"} 0`, "homing_partition_moves_total 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The admin listener serves the web console at /console/ and sends / there.
func TestConsoleIsServed(t *testing.T) {
	n := testkit.StartNode(t, "n1")
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Get("http://" + n.AdminAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("GET / = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = http.Get("http://" + n.AdminAddr() + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "<html") || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /console/ = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// The profiler is off unless asked for (--pprof): it shows the command
// line and the process's internals. Asked for, it sits behind the admin
// API's Host check (a DNS-rebound name gets 403).
func TestPprofOnlyWhenAskedFor(t *testing.T) {
	get := func(n *node.Node, host string) int {
		req, _ := http.NewRequest("GET", "http://"+n.AdminAddr()+"/debug/pprof/cmdline", nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(testkit.StartNode(t, "off"), ""); code != http.StatusNotFound {
		t.Fatalf("default node: /debug/pprof/cmdline = %d, want 404", code)
	}
	on := testkit.StartNode(t, "on", testkit.WithConfig(func(c *node.Config) { c.Admin.Pprof = true }))
	if code := get(on, ""); code != http.StatusOK {
		t.Fatalf("--pprof: /debug/pprof/cmdline = %d, want 200", code)
	}
	if code := get(on, "evil.invalid"); code != http.StatusForbidden {
		t.Fatalf("--pprof with Host evil.invalid: %d, want 403", code)
	}
}

// The queue mode set at run time survives a restart (it is saved in the
// data directory), even when the node starts with another --queue-mode.
func TestQueueModeSetAtRunTimeSurvivesARestart(t *testing.T) {
	data := t.TempDir()
	onData := testkit.WithConfig(func(c *node.Config) { c.Store.DataDir = data })
	n := testkit.StartNode(t, "n1", onData)
	mode := "locally-for-others"
	if _, err := client(n).UpdateSettings(context.Background(), admin.SettingsUpdate{QueueMode: &mode}); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	again := testkit.StartNode(t, "n1", onData, testkit.WithConfig(func(c *node.Config) { c.Routing.Mode = "locally" }))
	s, err := client(again).Settings(context.Background())
	if err != nil || s.QueueMode != mode {
		t.Fatalf("after the restart: %+v, %v; want %s", s, err, mode)
	}
}
