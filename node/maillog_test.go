package node_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/wait"
)

// mailLogNode is a real homing process relaying remote.test to a fake MX
// that answers later@ with 451 and nobody@ with 550, with the account
// alice@example.test and a submission listener.
type mailLogNode struct {
	p     *testkit.Process
	mx    *fakemx.Server
	admin *admin.Client
}

func startMailLogNode(t *testing.T, args ...string) *mailLogNode {
	t.Helper()
	mx := fakemx.Start(t)
	mx.FailRcptFunc(func(rcpt string) *gosmtp.SMTPError {
		switch {
		case strings.HasPrefix(rcpt, "later@"):
			return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 2, 0}, Message: "greylisted, try later"}
		case strings.HasPrefix(rcpt, "nobody@"):
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
		}
		return nil
	})
	p := testkit.StartProcess(t, homingBin, "mlog", append([]string{"--route", "remote.test=" + mx.Addr,
		"--submission", "127.0.0.1:0", "--retry-min", "1h"}, args...)...)
	c := admin.NewClient(p.Admin, "")
	if _, err := c.CreateAccount(context.Background(), admin.CreateAccount{Address: "alice@example.test", Password: "secret-words-1"}); err != nil {
		t.Fatal(err)
	}
	return &mailLogNode{p: p, mx: mx, admin: c}
}

// submit sends one message through the submission listener as alice
// (AUTH PLAIN) and returns its queue id.
func (n *mailLogNode) submit(t *testing.T, to string) string {
	t.Helper()
	c, err := gosmtp.Dial(n.p.Submission)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.test", "secret-words-1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alice@example.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(testkit.Message("alice@example.test", to, "log test", "hello"))
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	return queueIDOf(t, resp.StatusText)
}

func queueIDOf(t *testing.T, reply string) string {
	t.Helper()
	m := regexp.MustCompile(`queued as (\S+)`).FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("no queue id in %q", reply)
	}
	return m[1]
}

// waitLine waits for a line of the process's log that matches re.
func (n *mailLogNode) waitLine(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var found string
	wait.For(t, 15*time.Second, func() bool {
		found = rx.FindString(n.p.Log())
		return found != ""
	}, "a log line matching %s in\n%s", re, wait.Lazy(n.p.Log))
	return found
}

// The test: the delivery log of a delivered, a deferred and a
// bounced message, from a real node, in the shape Postfix admins grep;
// and the lines around them (queued, the report, removed, a refused RCPT,
// logins, an admin action).
func TestDeliveryLogOfDeliveredDeferredAndBouncedMail(t *testing.T) {
	n := startMailLogNode(t)
	q := regexp.QuoteMeta
	mx := q(n.mx.Addr[strings.LastIndex(n.mx.Addr, ":")+1:])

	n.waitLine(t, `msg="admin: action=create account, object=alice@example.test, by=loopback \(no token\), client=\[127\.0\.0\.1\], status=201"`)

	// Delivered to a local mailbox, from the Internet.
	reply, err := testkit.Send(n.p.SMTP, "bob@remote.test", []string{"alice@example.test"}, testkit.Message("bob@remote.test", "alice@example.test", "hi", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	local := queueIDOf(t, reply)
	n.waitLine(t, q(local)+`: from=<bob@remote\.test>, size=\d+, nrcpt=1, client=\[127\.0\.0\.1\], source=smtp, status=queued`)
	n.waitLine(t, q(local)+`: to=<alice@example\.test>, relay=mlog \(local\), delay=\d+\.\d\d, dsn=2\.0\.0, status=sent \(250 2\.0\.0 stored\)`)
	n.waitLine(t, q(local)+`: removed`)

	// Relayed, deferred, bounced: through submission, as alice.
	sent := n.submit(t, "friend@remote.test")
	n.waitLine(t, `auth: user=alice@example\.test, client=\[127\.0\.0\.1\], mechanism=PLAIN, via=submission, status=ok`)
	n.waitLine(t, q(sent)+`: to=<friend@remote\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:`+mx+`, delay=\d+\.\d\d, dsn=2\.0\.0, status=sent \(250 `)

	deferred := n.submit(t, "later@remote.test")
	n.waitLine(t, q(deferred)+`: to=<later@remote\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:`+mx+`, delay=\d+\.\d\d, dsn=4\.2\.0, status=deferred \(451 4\.2\.0 greylisted, try later\)`)

	bounced := n.submit(t, "nobody@remote.test")
	n.waitLine(t, q(bounced)+`: to=<nobody@remote\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:`+mx+`, delay=\d+\.\d\d, dsn=5\.1\.1, status=bounced \(550 5\.1\.1 no such user here\)`)
	report := n.waitLine(t, q(bounced)+`: sender non-delivery notification: \S+, to=<alice@example\.test>`)
	reportID := strings.TrimSuffix(strings.Fields(report)[4], ",")
	n.waitLine(t, q(reportID)+`: to=<alice@example\.test>, relay=mlog \(local\), .*status=sent`)
	n.waitLine(t, q(bounced)+`: removed`)

	// Refused at RCPT, with the client.
	if _, err := testkit.Send(n.p.SMTP, "x@remote.test", []string{"ghost@example.test"}, testkit.Message("x@remote.test", "ghost@example.test", "x", "x")); err == nil {
		t.Fatal("mail for an unknown account was accepted")
	}
	n.waitLine(t, `NOQUEUE: reject: RCPT from \[127\.0\.0\.1\]: 550 5\.1\.1 [^;]*; from=<x@remote\.test> to=<ghost@example\.test> via=smtp helo=<client\.test>`)

	// A failed login.
	c, err := gosmtp.Dial(n.p.Submission)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Hello("client.test")
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.test", "wrong-password")); err == nil {
		t.Fatal("a wrong password logged in")
	}
	n.waitLine(t, `auth: user=alice@example\.test, client=\[127\.0\.0\.1\], mechanism=PLAIN, via=submission, status=failed`)

	// Every line of the mail path carries its queue id as a field too.
	if !strings.Contains(n.p.Log(), `status=deferred (451 4.2.0 greylisted, try later)" node=mlog component=maillog queueID=`+deferred) {
		t.Errorf("the deferred line does not carry node and queueID:\n%s", n.p.Log())
	}
}

// The same lines under --log-format json carry their fields.
func TestDeliveryLogAsJSON(t *testing.T) {
	n := startMailLogNode(t, "--log-format", "json")
	bounced := n.submit(t, "nobody@remote.test")
	n.waitLine(t, `"queueID":"`+regexp.QuoteMeta(bounced)+`","event":"delivery","to":"<nobody@remote.test>"`)
	var rec map[string]any
	for _, ln := range strings.Split(n.p.Log(), "\n") {
		if strings.Contains(ln, `"queueID":"`+bounced+`","event":"delivery"`) {
			if err := json.Unmarshal([]byte(ln), &rec); err != nil {
				t.Fatalf("not JSON: %s: %v", ln, err)
			}
		}
	}
	for k, v := range map[string]string{"to": "<nobody@remote.test>", "dsn": "5.1.1", "status": "bounced",
		"reason": "550 5.1.1 no such user here", "node": "mlog", "component": "maillog", "level": "INFO"} {
		if rec[k] != v {
			t.Errorf("%s = %v, want %q in %v", k, rec[k], v, rec)
		}
	}
	if !strings.HasPrefix(rec["relay"].(string), "127.0.0.1[127.0.0.1]:") || rec["delay"] == "" {
		t.Errorf("relay %v, delay %v", rec["relay"], rec["delay"])
	}
	if !strings.HasPrefix(rec["msg"].(string), bounced+": to=<nobody@remote.test>, relay=") {
		t.Errorf("msg %q", rec["msg"])
	}
}
