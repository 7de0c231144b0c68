package smtp

import (
	"bytes"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/tlog"
)

// TestSessionHappyPath sends a message with DSN parameters through a real
// go-smtp client and checks what the Enqueuer got.
func TestSessionHappyPath(t *testing.T) {
	fixed := time.Date(2024, 3, 5, 10, 20, 30, 0, time.UTC)
	ts := startServer(t, Config{Now: func() time.Time { return fixed }}, false)

	c, err := gosmtp.Dial(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("extension %s not advertised", ext)
		}
	}
	if ok, v := c.Extension("SIZE"); !ok || v != "33554432" {
		t.Errorf("SIZE = %v %q, want 33554432", ok, v)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH advertised without an Authenticator")
	}
	if err := c.Mail("Sender@Remote.Example", &gosmtp.MailOptions{Return: gosmtp.DSNReturnHeaders, EnvelopeID: "env+id-1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("alias@EXAMPLE.test", &gosmtp.RcptOptions{
		Notify:                []gosmtp.DSNNotify{gosmtp.DSNNotifySuccess, gosmtp.DSNNotifyFailure},
		OriginalRecipientType: gosmtp.DSNAddressTypeRFC822,
		OriginalRecipient:     "list@lists.example",
	}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	body := "From: s@remote.example\r\nSubject: hi\r\n\r\n.leading dot\r\nline two \xc3\xa9\r\n"
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	envs, bodies := ts.enq.messages()
	if len(envs) != 1 {
		t.Fatalf("Enqueue got %d messages, want 1", len(envs))
	}
	env, got := envs[0], bodies[0]
	if !strings.Contains(resp.StatusText, "queued as "+env.ID) {
		t.Errorf("reply %q does not name the queue id %s", resp.StatusText, env.ID)
	}
	if env.From != "Sender@remote.example" {
		t.Errorf("From = %q", env.From)
	}
	if len(env.Recipients) != 1 {
		t.Fatalf("recipients = %+v", env.Recipients)
	}
	r := env.Recipients[0]
	if r.Addr != "alias@example.test" || r.Account != "alice@example.test" || r.State != mail.StatePending {
		t.Errorf("recipient = %+v", r)
	}
	if len(r.Notify) != 2 || r.Notify[0] != mail.NotifySuccess || r.Notify[1] != mail.NotifyFailure {
		t.Errorf("Notify = %v", r.Notify)
	}
	if r.ORcpt != "rfc822;list@lists.example" {
		t.Errorf("ORcpt = %q", r.ORcpt)
	}
	if env.Ret != mail.ReturnHeaders || env.EnvID != "env+id-1" {
		t.Errorf("Ret, EnvID = %q, %q", env.Ret, env.EnvID)
	}
	if !env.Body8Bit || env.SMTPUTF8 {
		t.Errorf("Body8Bit, SMTPUTF8 = %v, %v (go-smtp's client sends BODY=8BITMIME)", env.Body8Bit, env.SMTPUTF8)
	}
	if env.Source != mail.SourceSMTP || env.ClientIP != "127.0.0.1" || env.HELO != "client.example" || env.Auth != "" {
		t.Errorf("Source, ClientIP, HELO, Auth = %q, %q, %q, %q", env.Source, env.ClientIP, env.HELO, env.Auth)
	}
	if !env.Received.Equal(fixed) || env.Size != int64(len(got)) {
		t.Errorf("Received, Size = %v, %d (body %d)", env.Received, env.Size, len(got))
	}

	wantHdr := "Received: from client.example ([127.0.0.1])\r\n\tby mx.example.test with ESMTP id " + env.ID +
		"\r\n\tfor <alias@example.test>;\r\n\tTue, 05 Mar 2024 10:20:30 +0000\r\n"
	if !bytes.HasPrefix(got, []byte(wantHdr)) {
		t.Errorf("body does not start with the Received header:\n%q\nwant prefix\n%q", got, wantHdr)
	}
	if rest := string(got[len(wantHdr):]); rest != body {
		t.Errorf("body after the header = %q, want %q", rest, body)
	}
}

// TestSessionNullSenderAndSeveralRecipients: MAIL FROM:<> is allowed, a
// duplicate RCPT counts once, and with several recipients the Received
// header names none of them.
func TestSessionNullSenderAndSeveralRecipients(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("RCPT TO:<bob@example.test>", 250)
	c.expect("RCPT TO:<ALICE@example.test>", 550) // local parts keep their case; the directory decides
	c.expect("RCPT TO:<alice@EXAMPLE.TEST>", 250) // the same address again
	envs, _ := ts.enq.messages()
	if len(envs) != 0 {
		t.Fatal("message enqueued before DATA")
	}
	c.expect("DATA", 354)
	msg := c.expect("Subject: x\r\n\r\nhello\r\n.", 250)
	envs, bodies := ts.enq.messages()
	if len(envs) != 1 {
		t.Fatalf("got %d messages", len(envs))
	}
	if !strings.Contains(msg, envs[0].ID) {
		t.Errorf("reply %q lacks id %s", msg, envs[0].ID)
	}
	var addrs []string
	for _, r := range envs[0].Recipients {
		addrs = append(addrs, r.Addr)
	}
	if strings.Join(addrs, ",") != "alice@example.test,bob@example.test" {
		t.Errorf("recipients = %v", addrs)
	}
	if envs[0].From != "" {
		t.Errorf("From = %q, want the null sender", envs[0].From)
	}
	if bytes.Contains(bodies[0], []byte("\tfor <")) {
		t.Errorf("Received header names a recipient of a multi-recipient message: %q", bodies[0])
	}
}

func TestSessionUnknownUserAndDirectoryDown(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	if msg := c.expect("RCPT TO:<nobody@example.test>", 550); !strings.HasPrefix(msg, "5.1.1 ") {
		t.Errorf("unknown user: %q, want 5.1.1", msg)
	}
	ts.dir.setErr(errors.New("backend db: connection refused at 10.0.0.7"))
	msg := c.expect("RCPT TO:<alice@example.test>", 451)
	if !strings.HasPrefix(msg, "4.4.3 ") || strings.Contains(msg, "10.0.0.7") {
		t.Errorf("directory down: %q, want 4.4.3 without internal text", msg)
	}
	ts.dir.setErr(nil)
	c.expect("RCPT TO:<alice@example.test>", 250)
}

func TestSessionEnqueueErrors(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	send := func() (int, string) {
		c.expect("MAIL FROM:<s@remote.example>", 250)
		c.expect("RCPT TO:<alice@example.test>", 250)
		c.expect("DATA", 354)
		return c.cmd("Subject: x\r\n\r\nhi\r\n.")
	}

	ts.enq.set(errors.New("badger: sync /var/lib/homing/queue: disk full"), "")
	code, msg := send()
	if code != 451 || !strings.HasPrefix(msg, "4.3.0 ") || strings.Contains(msg, "badger") || strings.Contains(msg, "disk") {
		t.Errorf("enqueue error: %d %q, want 451 4.3.0 without internal text", code, msg)
	}

	ts.enq.set(&mail.Error{Code: 550, Status: "5.7.1", Reason: "Rejected by rule\r\nInjected: header"}, "")
	code, msg = send()
	if code != 550 || msg != "5.7.1 Rejected by ruleInjected: header" {
		t.Errorf("mail.Error: %d %q, want 550 5.7.1 with the rule's text (CR LF dropped)", code, msg)
	}

	ts.enq.set(&mail.Error{Code: 452, Status: "4.2.2", Reason: "Mailbox full"}, "")
	if code, msg = send(); code != 452 || msg != "4.2.2 Mailbox full" {
		t.Errorf("temporary mail.Error: %d %q", code, msg)
	}

	ts.enq.set(nil, "boom")
	ts.wantPanics = 1
	code, msg = send()
	if code != 451 || !strings.HasPrefix(msg, "4.3.0 ") || strings.Contains(msg, "boom") {
		t.Errorf("panic in Enqueue: %d %q, want 451 4.3.0", code, msg)
	}
	if got := ts.PanicsRecovered(); got != 1 {
		t.Errorf("PanicsRecovered() = %d, want 1", got)
	}
	c.expect("NOOP", 250) // the connection still answers
	ts.enq.set(nil, "")
	if code, msg = send(); code != 250 {
		t.Errorf("after the panic: %d %q", code, msg)
	}
	if envs, _ := ts.enq.messages(); len(envs) != 1 {
		t.Errorf("%d messages enqueued, want 1", len(envs))
	}
}

func TestSessionTransactionOrder(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("MAIL FROM:<t@remote.example>", 503) // nested MAIL, RFC 5321 §4.1.4
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("RSET", 250)
	c.expect("RCPT TO:<alice@example.test>", 502) // go-smtp: no MAIL after RSET
	c.expect("MAIL FROM:<t@remote.example>", 250)
	c.expect("DATA", 502) // no recipients
	c.expect("QUIT", 221)
}

func TestSessionSMTPUTF8(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	if msg := c.expect("MAIL FROM:<発信者@remote.example>", 553); !strings.HasPrefix(msg, "5.6.7 ") {
		t.Errorf("UTF-8 sender without SMTPUTF8: %q", msg)
	}
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<用户@example.test>", 553)
	c.expect("RSET", 250)
	c.expect("MAIL FROM:<発信者@remote.example> SMTPUTF8", 250)
	c.expect("RCPT TO:<用户@example.test>", 250)
	c.expect("DATA", 354)
	c.expect("Subject: x\r\n\r\nhi\r\n.", 250)
	envs, bodies := ts.enq.messages()
	if len(envs) != 1 || !envs[0].SMTPUTF8 || envs[0].Recipients[0].Account != "alice@example.test" {
		t.Fatalf("envelope = %+v", envs)
	}
	if !bytes.Contains(bodies[0], []byte(" with UTF8SMTP id ")) {
		t.Errorf("Received header lacks UTF8SMTP: %q", bodies[0])
	}
}

func TestSessionMetrics(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<x@remote.example>", 554)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	c.expect("hi\r\n.", 250)
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			if m.Counter != nil {
				got[key] = m.Counter.GetValue()
			} else if m.Gauge != nil {
				got[key] = m.Gauge.GetValue()
			}
		}
	}
	for key, want := range map[string]float64{
		"homing_smtp_sessions_total,listener=smtp":                   1,
		"homing_smtp_sessions_active,listener=smtp":                  1,
		"homing_smtp_messages_accepted_total,listener=smtp":          1,
		"homing_smtp_replies_total,class=5xx,code=554,listener=smtp": 1,
		"homing_smtp_replies_total,class=2xx,code=250,listener=smtp": 3,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, got[key], want, got)
		}
	}
	if got["homing_smtp_message_bytes_total,listener=smtp"] < 3 {
		t.Errorf("message bytes not counted: %v", got)
	}
}

func TestServerCloseEndsSessions(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
	if n := ts.lim.open(); n != 0 {
		t.Errorf("%d connections open after Close", n)
	}
}

var queueIDPattern = regexp.MustCompile(`^[0-9A-Z]{24}$`)

func TestQueueIDFormat(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	msg := c.expect("hi\r\n.", 250)
	id := strings.TrimPrefix(msg, "2.0.0 OK queued as ")
	if !queueIDPattern.MatchString(id) {
		t.Errorf("reply %q: id %q is not a queue id", msg, id)
	}
}

// Close between Serve's check for Close and go-smtp's Serve taking the
// listener, as a node's shutdown right after its start can: Serve returns.
// (go-smtp's Shutdown closes only the listeners its Serve has registered:
// such a Close left Serve in Accept for ever, and the node's Close waiting
// for it; seen once in TestQueueModeSetAtRunTimeSurvivesARestart.)
func TestCloseWhileServeStartsEndsServe(t *testing.T) {
	srv := NewServer(Config{Hostname: "mx.example.test"}, newFakeDirectory(), &fakeEnqueuer{}, nil,
		tlog.New(t, "smtp"), NewMetrics(prometheus.NewRegistry()))
	closed := make(chan error, 1)
	srv.testHookServe = func() { closed <- srv.Close() }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve returned %v after Close", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still accepting 10 s after Close")
	}
}
