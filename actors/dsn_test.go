package actors

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/actors/actorstest"
	hmail "github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// ---------------------------------------------------------------------------
// Reports through the queue (RFC 3461 §6, RFC 3464).

func rejectBad(r *hmail.Recipient, _ int) hmail.Result {
	if hmail.Domain(r.Addr) == "bad.example" {
		return hmail.Result{Code: 550, Status: hmail.StatusNoSuchUser, Text: "user unknown", RemoteMTA: "mx.bad.example"}
	}
	return hmail.Delivered("ok")
}

// A permanent relay failure makes a failure report, enqueued from the null
// sender with the id original+"F" before the original leaves the queue,
// and delivered to the (local) sender.
func TestPermanentFailureReportsToSender(t *testing.T) {
	const sam = "sam@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: sam})
	relayer := actorstest.NewRelayer()
	relayer.Answer(rejectBad)
	queue := actorstest.NewQueue()
	stats := NewStats(nil)
	s := startSystem(t, testConfig(), Deps{OpenPartition: openFake(part), Queue: queue, Relayer: relayer, Stats: stats})

	env := newEnvelope(sam, "nobody@bad.example")
	env.EnvID = "env 1"
	env.Recipients[0].ORcpt = "rfc822;nobody@bad.example"
	body := testBody("bounce me")
	id := enqueue(t, s, env, body)
	fid := id + "F"
	queue.WaitDeleted(t, id)
	queue.WaitDeleted(t, fid)

	put := queue.FirstPut(fid)
	if put == nil {
		t.Fatalf("no report %s queued", fid)
	}
	if p, d := queue.OpIndex(actorstest.OpPut, fid), queue.OpIndex(actorstest.OpDelete, id); p > d {
		t.Errorf("the report was queued (write %d) after the original was deleted (write %d)", p, d)
	}
	rep := put.Env
	if rep.From != "" || rep.Source != hmail.SourceDSN || len(rep.Recipients) != 1 {
		t.Fatalf("report envelope from %q, source %s, %d recipients; want from <>, dsn, 1", rep.From, rep.Source, len(rep.Recipients))
	}
	if r := rep.Recipients[0]; r.Addr != sam || r.Account != sam || !slices.Equal(r.Notify, []hmail.Notify{hmail.NotifyNever}) {
		t.Errorf("report recipient %+v, want %s (local account), NOTIFY=NEVER", r, sam)
	}
	msgs := part.Stored(sam)
	if len(msgs) != 1 || msgs[0].DedupKey != fid+"/"+sam {
		t.Fatalf("sender's mailbox holds %+v, want the report once (dedup key %s/%s)", msgs, fid, sam)
	}
	raw := msgs[0].Raw
	for field, want := range map[string]string{
		"Action":               "failed",
		"Status":               "5.1.1",
		"Final-Recipient":      "rfc822; nobody@bad.example",
		"Original-Recipient":   "rfc822;nobody@bad.example",
		"Remote-MTA":           "dns; mx.bad.example",
		"Diagnostic-Code":      "smtp; 550 5.1.1 user unknown",
		"Original-Envelope-Id": "env+201",
		"Reporting-MTA":        "dns; mx.example.test",
	} {
		if got := dsnField(raw, field); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %v, want [%s]", field, got, want)
		}
	}
	if !bytes.Contains(raw, body) {
		t.Error("the report does not return the original message (no RET: the full message)")
	}
	if got := stats.Bounced.Load(); got != 1 {
		t.Errorf("Bounced = %d, want 1", got)
	}
}

// No failure report to the null sender (RFC 3461 §6.2: no loops), none
// when NOTIFY says not to, and none about a report that failed.
func TestNoFailureReport(t *testing.T) {
	for _, c := range []struct {
		name   string
		from   string
		notify []hmail.Notify
	}{
		{"null sender", "", nil},
		{"NOTIFY=NEVER", "bob@remote.example", []hmail.Notify{hmail.NotifyNever}},
		{"NOTIFY=SUCCESS,DELAY", "bob@remote.example", []hmail.Notify{hmail.NotifySuccess, hmail.NotifyDelay}},
	} {
		t.Run(c.name, func(t *testing.T) {
			relayer := actorstest.NewRelayer()
			relayer.Answer(rejectBad)
			queue := actorstest.NewQueue()
			s := startSystem(t, testConfig(), Deps{Queue: queue, Relayer: relayer})
			env := newEnvelope(c.from, "nobody@bad.example")
			env.Recipients[0].Notify = c.notify
			id := enqueue(t, s, env, testBody(c.name))
			queue.WaitDeleted(t, id)
			// A report is always queued before the original is deleted.
			for _, op := range queue.Ops() {
				if op.Kind == actorstest.OpPut && op.ID != id {
					t.Errorf("report %s queued", op.ID)
				}
			}
			if n := len(relayer.CallsFor(id)); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
		})
	}
	t.Run("report that fails", func(t *testing.T) {
		relayer := actorstest.NewRelayer()
		relayer.Answer(rejectBad)
		queue := actorstest.NewQueue()
		s := startSystem(t, testConfig(), Deps{Queue: queue, Relayer: relayer})
		id := enqueue(t, s, newEnvelope("bob@bad.example", "nobody@bad.example"), testBody("loop"))
		fid := reportID(id, reportFailure)
		queue.WaitDeleted(t, id)
		queue.WaitDeleted(t, fid)
		if n := len(relayer.CallsFor(fid)); n != 1 {
			t.Errorf("report attempted %d times, want 1", n)
		}
		for _, op := range queue.Ops() {
			if op.Kind == actorstest.OpPut && op.ID != id && op.ID != fid {
				t.Errorf("report about the report queued: %s", op.ID)
			}
		}
	})
}

// NOTIFY=SUCCESS on a recipient delivered locally makes a success report
// (id original+"S") for that recipient only, with the headers only.
func TestSuccessReportForLocalDelivery(t *testing.T) {
	const ann, ben = "ann@example.test", "ben@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann}, storage.Account{Address: ben})
	relayer := actorstest.NewRelayer()
	queue := actorstest.NewQueue()
	s := startSystem(t, testConfig(), Deps{OpenPartition: openFake(part), Queue: queue, Relayer: relayer})

	env := newEnvelope("bob@remote.example", ann, ben)
	env.Recipients[0].Notify = []hmail.Notify{hmail.NotifySuccess, hmail.NotifyFailure}
	body := testBody("please confirm")
	id := enqueue(t, s, env, body)
	sid := reportID(id, reportSuccess)
	queue.WaitDeleted(t, id)
	queue.WaitDeleted(t, sid)

	if p, d := queue.OpIndex(actorstest.OpPut, sid), queue.OpIndex(actorstest.OpDelete, id); p < 0 || p > d {
		t.Errorf("success report queued at write %d, original deleted at write %d", p, d)
	}
	calls := relayer.CallsFor(sid)
	if len(calls) != 1 || calls[0].Env.From != "" || !slices.Equal(calls[0].Rcpts, []string{"bob@remote.example"}) {
		t.Fatalf("success report calls %+v, want one from <> to bob@remote.example", calls)
	}
	raw := calls[0].Body
	if got := dsnField(raw, "Final-Recipient"); !slices.Equal(got, []string{"rfc822; " + ann}) {
		t.Errorf("Final-Recipient %v, want only %s (who asked)", got, ann)
	}
	if got := dsnField(raw, "Action"); !slices.Equal(got, []string{"delivered"}) {
		t.Errorf("Action %v, want [delivered]", got)
	}
	if got := dsnField(raw, "Status"); !slices.Equal(got, []string{"2.0.0"}) {
		t.Errorf("Status %v, want [2.0.0]", got)
	}
	if bytes.Contains(raw, []byte("Hello, please confirm.")) {
		t.Error("a success report returned the message body, want the headers only")
	}
	if len(part.Stored(ann)) != 1 || len(part.Stored(ben)) != 1 {
		t.Error("the message was not delivered to both recipients")
	}
}

// ---------------------------------------------------------------------------
// buildDSN (RFC 3464 structure).

// parsedDSN is a report taken apart with the standard library's MIME
// readers.
type parsedDSN struct {
	header   mail.Header
	params   map[string]string // of the top Content-Type
	types    []string          // Content-Type of each part
	parts    [][]byte
	message  textproto.MIMEHeader   // the per-message fields
	rcpts    []textproto.MIMEHeader // the per-recipient fields
	rawLines []string
}

func parseDSN(t *testing.T, raw []byte) *parsedDSN {
	t.Helper()
	p := &parsedDSN{rawLines: strings.Split(string(raw), "\r\n")}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("report is not an RFC 5322 message: %v\n%s", err, raw)
	}
	p.header = msg.Header
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" {
		t.Fatalf("Content-Type %q (%v), want multipart/report", msg.Header.Get("Content-Type"), err)
	}
	p.params = params
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the parts: %v\n%s", err, raw)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("reading a part: %v", err)
		}
		p.types = append(p.types, part.Header.Get("Content-Type"))
		p.parts = append(p.parts, b)
	}
	if len(p.parts) < 2 {
		t.Fatalf("%d parts, want 3\n%s", len(p.parts), raw)
	}
	// RFC 3464 §2.1: per-message fields, then a blank line before each
	// recipient's fields.
	for i, group := range strings.Split(strings.Trim(string(p.parts[1]), "\r\n"), "\r\n\r\n") {
		h, err := textproto.NewReader(bufio.NewReader(strings.NewReader(group + "\r\n\r\n"))).ReadMIMEHeader()
		if err != nil {
			t.Fatalf("delivery-status group %d: %v\n%s", i, err, group)
		}
		if i == 0 {
			p.message = h
		} else {
			p.rcpts = append(p.rcpts, h)
		}
	}
	return p
}

// checkFields compares fields of h with want ("" = must be absent).
func checkFields(t *testing.T, what string, h textproto.MIMEHeader, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got := h.Values(k)
		switch {
		case v == "" && len(got) != 0:
			t.Errorf("%s: %s = %q, want none", what, k, got)
		case v != "" && (len(got) != 1 || got[0] != v):
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

var (
	dsnNow      = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	dsnReceived = dsnNow.Add(-2 * time.Hour)
	dsnDone     = dsnNow.Add(-time.Minute)
	dsnUntil    = dsnReceived.Add(5 * 24 * time.Hour)
)

func dsnEnvelope() *hmail.Envelope {
	return &hmail.Envelope{
		ID: "06ABCDEF", From: "sam@example.test", EnvID: "id+1 = x", Received: dsnReceived,
		Recipients: []*hmail.Recipient{
			{Key: 1, Addr: "a@far.example", ORcpt: "rfc822;a@far.example", State: hmail.StateFailed, Status: "5.1.1",
				LastError: "550 5.1.1 no such user\r\nX-Injected: yes", RemoteMTA: "mx.far.example", Done: dsnDone},
			{Key: 2, Addr: "b@example.test", Account: "b@example.test", State: hmail.StateDelivered, Status: "2.0.0", Done: dsnDone},
			{Key: 3, Addr: "c@slow.example", State: hmail.StateDeferred, Status: "4.4.1",
				LastError: "451 4.4.1 connection timed out", Done: dsnDone, NextAttempt: dsnNow.Add(time.Minute)},
		},
	}
}

var dsnOriginal = []byte("From: sam@example.test\r\nTo: a@far.example\r\nSubject: hello\r\n\r\nThe secret body.\r\n")

func TestBuildDSNFailureStructure(t *testing.T) {
	env := dsnEnvelope()
	raw := buildDSN("mx.example.test", env, dsnOriginal, reportFailure, []int{1}, []int{2}, dsnNow, dsnUntil, "06ABCDEFF")
	p := parseDSN(t, raw)

	for k, want := range map[string]string{
		"From":           "Mail Delivery System <MAILER-DAEMON@mx.example.test>",
		"To":             "<sam@example.test>",
		"Subject":        "Undelivered Mail Returned to Sender",
		"Message-Id":     "<06ABCDEFF@mx.example.test>",
		"Auto-Submitted": "auto-replied",
		"Mime-Version":   "1.0",
	} {
		if got := p.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if d, err := p.header.Date(); err != nil || !d.Equal(dsnNow) {
		t.Errorf("Date = %v, %v; want %v", d, err, dsnNow)
	}
	if p.params["report-type"] != "delivery-status" || p.params["boundary"] == "" {
		t.Errorf("Content-Type parameters %v, want report-type=delivery-status and a boundary", p.params)
	}
	if bytes.Contains(dsnOriginal, []byte(p.params["boundary"])) {
		t.Error("the boundary occurs in the returned message")
	}
	if want := []string{"text/plain; charset=utf-8", "message/delivery-status", "message/rfc822"}; !slices.Equal(p.types, want) {
		t.Fatalf("parts %q, want %q", p.types, want)
	}
	// CR and LF become spaces: the reply stays on one line.
	if !bytes.Contains(p.parts[0], []byte("<a@far.example>: 550 5.1.1 no such user  X-Injected: yes\r\n")) {
		t.Errorf("human-readable part does not name the failed recipient and its error on one line:\n%s", p.parts[0])
	}

	checkFields(t, "per-message", p.message, map[string]string{
		"Reporting-MTA":        "dns; mx.example.test",
		"Original-Envelope-Id": "id+2B1+20+3D+20x",
		"Arrival-Date":         dsnReceived.Format(time.RFC1123Z),
	})
	if len(p.rcpts) != 2 {
		t.Fatalf("%d per-recipient groups, want 2 (the failed one, the delivered one; not the deferred one)", len(p.rcpts))
	}
	checkFields(t, "failed recipient", p.rcpts[0], map[string]string{
		"Original-Recipient": "rfc822;a@far.example",
		"Final-Recipient":    "rfc822; a@far.example",
		"Action":             "failed",
		"Status":             "5.1.1",
		"Remote-MTA":         "dns; mx.far.example",
		"Diagnostic-Code":    "smtp; 550 5.1.1 no such user  X-Injected: yes",
		"Last-Attempt-Date":  dsnDone.Format(time.RFC1123Z),
		"Will-Retry-Until":   "",
		"X-Injected":         "",
	})
	checkFields(t, "delivered recipient", p.rcpts[1], map[string]string{
		"Final-Recipient": "rfc822; b@example.test",
		"Action":          "delivered",
		"Status":          "2.0.0",
		"Diagnostic-Code": "",
	})
	if !bytes.Equal(bytes.TrimRight(p.parts[2], "\r\n"), bytes.TrimRight(dsnOriginal, "\r\n")) {
		t.Errorf("returned message %q, want the original", p.parts[2])
	}
	for i, l := range p.rawLines {
		if len(l) > 998 {
			t.Errorf("line %d is %d octets long (RFC 5322 §2.1.1: at most 998)", i+1, len(l))
		}
	}
}

// RET=HDRS, a message too big to return, and reports other than failures
// carry the original's header section only (RFC 3462 text/rfc822-headers).
func TestBuildDSNHeadersOnly(t *testing.T) {
	big := append(append([]byte(nil), dsnOriginal...), bytes.Repeat([]byte("x"), maxReturnedBody)...)
	for _, c := range []struct {
		name string
		ret  hmail.Return
		kind reportKind
		body []byte
		keys []int
	}{
		{"RET=HDRS", hmail.ReturnHeaders, reportFailure, dsnOriginal, []int{1}},
		{"too big", hmail.ReturnFull, reportFailure, big, []int{1}},
		{"delay", hmail.ReturnFull, reportDelay, dsnOriginal, []int{3}},
		{"success", hmail.ReturnFull, reportSuccess, dsnOriginal, []int{2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := dsnEnvelope()
			env.Ret = c.ret
			raw := buildDSN("mx.example.test", env, c.body, c.kind, c.keys, nil, dsnNow, dsnUntil, "R1")
			p := parseDSN(t, raw)
			if len(p.types) != 3 || p.types[2] != "text/rfc822-headers" {
				t.Fatalf("parts %q, want the third text/rfc822-headers", p.types)
			}
			if want := "From: sam@example.test\r\nTo: a@far.example\r\nSubject: hello\r\n"; string(p.parts[2]) != want {
				t.Errorf("returned headers %q, want %q", p.parts[2], want)
			}
			if bytes.Contains(raw, []byte("The secret body.")) {
				t.Error("the report contains the message body")
			}
		})
	}
}

func TestBuildDSNDelay(t *testing.T) {
	env := dsnEnvelope()
	raw := buildDSN("mx.example.test", env, dsnOriginal, reportDelay, []int{3}, nil, dsnNow, dsnUntil, "06ABCDEFD")
	p := parseDSN(t, raw)
	if got := p.header.Get("Subject"); got != "Delayed Mail (still being retried)" {
		t.Errorf("Subject %q", got)
	}
	if len(p.rcpts) != 1 {
		t.Fatalf("%d per-recipient groups, want 1", len(p.rcpts))
	}
	checkFields(t, "delayed recipient", p.rcpts[0], map[string]string{
		"Final-Recipient":  "rfc822; c@slow.example",
		"Action":           "delayed",
		"Status":           "4.4.1",
		"Diagnostic-Code":  "smtp; 451 4.4.1 connection timed out",
		"Will-Retry-Until": dsnUntil.Format(time.RFC1123Z),
	})
}

func TestBuildDSNLongDiagnosticStaysOnOneLine(t *testing.T) {
	env := dsnEnvelope()
	env.Recipients[0].LastError = "550 " + strings.Repeat("very long reply ", 200)
	raw := buildDSN("mx.example.test", env, dsnOriginal, reportFailure, []int{1}, nil, dsnNow, dsnUntil, "L1")
	p := parseDSN(t, raw)
	if d := p.rcpts[0].Get("Diagnostic-Code"); !strings.HasPrefix(d, "smtp; 550 very long reply") {
		t.Errorf("Diagnostic-Code %q", d)
	}
	for i, l := range p.rawLines {
		if len(l) > 998 {
			t.Errorf("line %d is %d octets long (RFC 5322 §2.1.1: at most 998)", i+1, len(l))
		}
	}
}

// RFC 3461 §4: xtext keeps "!".."~" except "+" and "=", and encodes every
// other octet as "+" and two upper-case hex digits.
func TestXtext(t *testing.T) {
	for in, want := range map[string]string{
		"":          "",
		"abc-123.x": "abc-123.x",
		"a+b=c":     "a+2Bb+3Dc",
		"a b\tc":    "a+20b+09c",
		"~!":        "~!",
		"é":         "+C3+A9",
		"\x7f":      "+7F",
	} {
		if got := xtext(in); got != want {
			t.Errorf("xtext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaderBlock(t *testing.T) {
	for in, want := range map[string]string{
		"A: 1\r\nB: 2\r\n\r\nbody\r\n": "A: 1\r\nB: 2\r\n",
		"A: 1\r\nB: 2\r\n":             "A: 1\r\nB: 2\r\n",
		"A: 1":                         "A: 1\r\n",
	} {
		if got := string(headerBlock([]byte(in))); got != want {
			t.Errorf("headerBlock(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReportIDs(t *testing.T) {
	got := []string{reportID("X", reportFailure), reportID("X", reportDelay), reportID("X", reportSuccess)}
	if want := []string{"XF", "XD", "XS"}; !slices.Equal(got, want) {
		t.Errorf("report ids %v, want %v", got, want)
	}
}
