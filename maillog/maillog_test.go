package maillog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

func textLog(out *bytes.Buffer, now func() time.Time) *Log {
	return New(slog.New(slog.NewTextHandler(out, nil)), Options{Now: now})
}

func TestDeliveryLineHasThePostfixShape(t *testing.T) {
	var out bytes.Buffer
	l := textLog(&out, nil)
	l.Delivery(Delivery{QueueID: "Q1", To: "bob@example.net", Relay: "mx.example.net[192.0.2.1]:25",
		Delay: 120 * time.Millisecond, DSN: "2.0.0", Status: StatusSent, Reason: "250 2.0.0 Ok\r\n queued"})
	want := `msg="Q1: to=<bob@example.net>, relay=mx.example.net[192.0.2.1]:25, delay=0.12, dsn=2.0.0, status=sent (250 2.0.0 Ok queued)" queueID=Q1`
	if !strings.Contains(out.String(), want) {
		t.Fatalf("got\n%s\nwant a record with\n%s", out.String(), want)
	}
	if strings.Contains(out.String(), " relay=mx") && strings.Count(out.String(), "relay=") != 1 {
		t.Fatalf("a text line says its fields twice:\n%s", out.String())
	}
}

func TestJSONRecordsCarryTheFields(t *testing.T) {
	var out bytes.Buffer
	l := New(slog.New(slog.NewJSONHandler(&out, nil)), Options{Fields: true})
	l.Delivery(Delivery{QueueID: "Q2", To: "c@example.test", Relay: "be1 (cluster)", Delay: 3 * time.Second,
		DSN: "4.2.2", Status: StatusDeferred, Reason: "452 4.2.2 mailbox full"})
	l.Queued(&mail.Envelope{ID: "Q3", From: "", Size: 42, Recipients: []*mail.Recipient{{}, {}}, ClientIP: "192.0.2.7", Source: "smtp"}, "")
	var recs []map[string]any
	for _, ln := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", ln, err)
		}
		recs = append(recs, m)
	}
	d := recs[0]
	for k, v := range map[string]string{"queueID": "Q2", "event": "delivery", "to": "<c@example.test>", "relay": "be1 (cluster)",
		"delay": "3.00", "dsn": "4.2.2", "status": "deferred", "reason": "452 4.2.2 mailbox full"} {
		if d[k] != v {
			t.Errorf("delivery record: %s = %v, want %q (record %v)", k, d[k], v, d)
		}
	}
	if !strings.HasPrefix(d["msg"].(string), "Q2: to=<c@example.test>, relay=be1 (cluster), delay=3.00") {
		t.Errorf("msg = %q", d["msg"])
	}
	q := recs[1]
	for k, v := range map[string]string{"event": "queued", "from": "<>", "size": "42", "nrcpt": "2", "client": "[192.0.2.7]", "status": "queued"} {
		if q[k] != v {
			t.Errorf("queued record: %s = %v, want %q (record %v)", k, q[k], v, q)
		}
	}
}

func TestRejectionsOfAFloodAreThrottled(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(1_000_000, 0)
	l := textLog(&out, func() time.Time { return now })
	for i := 0; i < 5000; i++ {
		l.Rejected(Reject{Stage: "RCPT", Listener: "smtp", Client: fmt.Sprintf("192.0.2.%d", i%250), HELO: "x",
			From: "a@example.net", To: fmt.Sprintf("u%d@example.test", i), Code: 550, DSN: "5.1.1", Text: "Mailbox unavailable"})
	}
	if n := strings.Count(out.String(), "NOQUEUE: reject: RCPT"); n != DefaultBurst {
		t.Fatalf("%d lines for 5,000 refusals within a second, want %d:\n%s", n, DefaultBurst, out.String())
	}
	now = now.Add(time.Second)
	l.Rejected(Reject{Stage: "RCPT", Client: "192.0.2.1", To: "late@example.test", Code: 550, DSN: "5.1.1", Text: "Mailbox unavailable"})
	if !strings.Contains(out.String(), "[4990 more like it suppressed]") {
		t.Fatalf("the line after the flood does not count it:\n%s", out.String())
	}
	// Another kind of line was never held up.
	l.Delivery(Delivery{QueueID: "Q", To: "x@y", Status: StatusSent})
	if !strings.Contains(out.String(), "Q: to=<x@y>") {
		t.Fatal("a delivery line was held up by the flood")
	}
}

func TestValuesFromOthersAreOneBoundedLine(t *testing.T) {
	var out bytes.Buffer
	l := textLog(&out, nil)
	l.Rejected(Reject{Stage: "DATA", Client: "192.0.2.1", HELO: "evil\r\nINFO fake line" + strings.Repeat("A", 5000),
		Code: 550, DSN: "5.6.0", Text: "bad"})
	s := out.String()
	if strings.Count(s, "\n") != 1 || len(s) > 3*maxValue {
		t.Fatalf("a hostile HELO made %d lines, %d bytes:\n%.300s", strings.Count(s, "\n"), len(s), s)
	}
}

func TestSinceReturnsTheNewestLinesInOrder(t *testing.T) {
	l := New(nil, Options{Keep: 3})
	for i := 1; i <= 5; i++ {
		l.Removed(fmt.Sprintf("Q%d", i))
	}
	got := l.Since(0, 0)
	if len(got) != 3 || got[0].Line != "Q3: removed" || got[2].Line != "Q5: removed" || got[2].Seq != 5 {
		t.Fatalf("Since(0) = %+v, want Q3..Q5", got)
	}
	if got := l.Since(4, 0); len(got) != 1 || got[0].QueueID != "Q5" {
		t.Fatalf("Since(4) = %+v, want Q5", got)
	}
	if got := l.Since(0, 2); len(got) != 2 || got[0].QueueID != "Q4" {
		t.Fatalf("Since(0, 2) = %+v, want Q4, Q5", got)
	}
	var nilLog *Log
	nilLog.Removed("x")
	if nilLog.Since(0, 0) != nil {
		t.Fatal("a nil log keeps lines")
	}
}

func TestAdminAndLoginLines(t *testing.T) {
	var out bytes.Buffer
	l := textLog(&out, nil)
	l.AdminAction(Admin{Who: "admin token", Action: "create account", Object: "alice@example.test", Client: "127.0.0.1", Code: 201})
	l.Login(Auth{User: "alice@example.test", Client: "127.0.0.1", Mechanism: "PLAIN", Via: "submission", Result: AuthFailed})
	l.Report("Q9", ReportFailure, "Q9F", "alice@example.test")
	for _, want := range []string{
		`admin: action=create account, object=alice@example.test, by=admin token, client=[127.0.0.1], status=201`,
		`auth: user=alice@example.test, client=[127.0.0.1], mechanism=PLAIN, via=submission, status=failed`,
		`Q9: sender non-delivery notification: Q9F, to=<alice@example.test>`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no line %q in\n%s", want, out.String())
		}
	}
}
