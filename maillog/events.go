package maillog

import (
	"strconv"
	"time"

	"github.com/homing-mail/homing/mail"
)

// The lines, one method per event. Every method of a nil *Log does
// nothing.

// Queued logs a message that is now durable in this node's queue:
//
//	ID: from=<alice@example.test>, size=1234, nrcpt=2, client=[192.0.2.7], source=smtp, status=queued
//
// how, when set, says more ("handed over by fe1") in parentheses.
func (l *Log) Queued(env *mail.Envelope, how string) {
	if l == nil || env == nil {
		return
	}
	ln := &line{event: EventQueued, queueID: env.ID}
	ln.text.WriteString(env.ID + ": ")
	ln.kv("from", angle(env.From))
	ln.kv("size", strconv.FormatInt(env.Size, 10))
	ln.kv("nrcpt", strconv.Itoa(len(env.Recipients)))
	ln.kv("client", client(env.ClientIP))
	ln.kv("source", clean(string(env.Source)))
	if env.Auth != "" {
		ln.kv("user", clean(env.Auth))
	}
	ln.status(EventQueued, clean(how))
	l.write(ln, "")
}

// Delivery is the queue's verdict on one recipient after one attempt.
type Delivery struct {
	QueueID string
	To      string // the recipient's address
	// OrigTo is the address the sender gave when an alias changed it
	// (Postfix's orig_to); "" otherwise.
	OrigTo string
	// Relay is where the attempt went: "mx.example.net[192.0.2.1]:25",
	// "be1 (cluster)", "homing (local)"; "none" when it went nowhere.
	Relay  string
	Delay  time.Duration // since the message was queued
	DSN    mail.Status
	Status string // StatusSent, StatusDeferred, StatusBounced
	Reason string // the answer or the error, for people
}

// Delivery logs one recipient's verdict:
//
//	ID: to=<bob@example.net>, relay=mx.example.net[192.0.2.1]:25, delay=0.12, dsn=2.0.0, status=sent (250 2.0.0 Ok)
func (l *Log) Delivery(d Delivery) {
	if l == nil {
		return
	}
	ln := &line{event: EventDelivery, queueID: d.QueueID}
	ln.text.WriteString(d.QueueID + ": ")
	ln.kv("to", angle(d.To))
	if d.OrigTo != "" {
		ln.kv("orig_to", angle(d.OrigTo))
	}
	relay := d.Relay
	if relay == "" {
		relay = "none"
	}
	ln.kv("relay", clean(relay))
	ln.kv("delay", delay(d.Delay))
	ln.kv("dsn", clean(string(d.DSN)))
	ln.status(d.Status, clean(d.Reason))
	l.write(ln, "")
}

// Transferred logs a message handed to a member that processes queues
// for others (queue mode Remotely): that member's log goes on with it.
//
//	ID: relay=fe1 (cluster transfer), delay=0.05, status=transferred (fe1 processes it from now on)
func (l *Log) Transferred(id, member string, d time.Duration) {
	if l == nil {
		return
	}
	ln := &line{event: EventTransferred, queueID: id}
	ln.text.WriteString(id + ": ")
	ln.kv("relay", clean(member)+" (cluster transfer)")
	ln.kv("delay", delay(d))
	ln.status(EventTransferred, clean(member)+" processes it from now on")
	l.write(ln, "")
}

// Report kinds (Postfix's words).
const (
	ReportFailure = "sender non-delivery notification"
	ReportDelay   = "sender delay notification"
	ReportSuccess = "sender delivery status notification"
)

// Report logs a delivery status notification queued about message id:
//
//	ID: sender non-delivery notification: REPORTID, to=<alice@example.test>
func (l *Log) Report(id, kind, reportID, to string) {
	if l == nil {
		return
	}
	ln := &line{event: EventReport, queueID: id}
	ln.text.WriteString(id + ": " + kind + ": " + reportID)
	ln.fields = append(ln.fields, field{"kind", kind}, field{"report", reportID})
	ln.kv("to", angle(to))
	l.write(ln, "")
}

// Removed logs a message leaving this node's queue (every recipient
// final, its report durable; or deleted by the administrator).
//
//	ID: removed
func (l *Log) Removed(id string) {
	if l == nil {
		return
	}
	ln := &line{event: EventRemoved, queueID: id}
	ln.text.WriteString(id + ": removed")
	l.write(ln, "")
}

// Reject is a refusal of a command of an SMTP client.
type Reject struct {
	Stage    string // "RCPT", "DATA", "MAIL"
	Listener string // smtp, submission
	Client   string // the client's IP
	HELO     string
	From, To string // the transaction's sender and (RCPT) recipient
	Code     int
	DSN      mail.Status
	Text     string // the reply's text
}

// Rejected logs a refusal, throttled per stage and reply (a stranger
// sends as many as it likes):
//
//	NOQUEUE: reject: RCPT from [192.0.2.7]: 550 5.1.1 Mailbox unavailable; from=<a@example.net> to=<nobody@example.test> helo=<client.example.net>
func (l *Log) Rejected(r Reject) {
	if l == nil {
		return
	}
	code := strconv.Itoa(r.Code)
	ln := &line{event: EventReject}
	ln.text.WriteString("NOQUEUE: reject: " + r.Stage + " from " + client(r.Client) + ": " + code + " " +
		clean(string(r.DSN)) + " " + clean(r.Text) + "; from=" + angle(r.From))
	ln.fields = append(ln.fields, field{"stage", r.Stage}, field{"client", client(r.Client)}, field{"code", code},
		field{"dsn", clean(string(r.DSN))}, field{"reason", clean(r.Text)}, field{"from", angle(r.From)})
	if r.To != "" {
		ln.text.WriteString(" to=" + angle(r.To))
		ln.fields = append(ln.fields, field{"to", angle(r.To)})
	}
	ln.text.WriteString(" via=" + clean(r.Listener) + " helo=<" + clean(r.HELO) + ">")
	ln.fields = append(ln.fields, field{"via", clean(r.Listener)}, field{"helo", clean(r.HELO)})
	l.write(ln, "reject "+r.Stage+" "+code+" "+string(r.DSN))
}

// Auth results.
const (
	AuthOK        = "ok"
	AuthFailed    = "failed"
	AuthThrottled = "throttled" // refused unchecked: too many failures
	AuthBusy      = "busy"      // refused unchecked: no password check slot
	AuthDisabled  = "disabled"  // the right password of a disabled account
)

// Auth is a login attempt: SMTP AUTH, or basic authentication on the
// admin API (submit, a user's password change).
type Auth struct {
	User      string
	Client    string // the client's IP
	Mechanism string // PLAIN, LOGIN, basic
	Via       string // smtp, submission, api
	Result    string // AuthOK, AuthFailed, ...
}

// Login logs a login attempt; all but a success are throttled per result
// and listener:
//
//	auth: user=alice@example.test, client=[192.0.2.7], mechanism=PLAIN, via=submission, status=ok
func (l *Log) Login(a Auth) {
	if l == nil {
		return
	}
	ln := &line{event: EventAuth}
	ln.text.WriteString("auth: ")
	ln.kv("user", clean(a.User))
	ln.kv("client", client(a.Client))
	ln.kv("mechanism", clean(a.Mechanism))
	ln.kv("via", clean(a.Via))
	ln.status(a.Result, "")
	kind := ""
	if a.Result != AuthOK {
		kind = "auth " + a.Result + " " + a.Via
	}
	l.write(ln, kind)
}

// Admin is one request of the admin API that changes something.
type Admin struct {
	Who    string // "admin token", "read-only token", "loopback (no token)", "account alice@example.test"
	Action string // "create account", "delete domain", ...
	Object string // what it acted on: an address, a queue id, a domain
	Client string // the client's IP
	Code   int    // the HTTP status answered
	Error  string // the answer's error, when it failed
}

// AdminAction logs an administrator's action, whether it worked or not; a
// refused one (401, 403, 429: anyone can send those) is throttled:
//
//	admin: action=create account, object=alice@example.test, by=admin token, client=[127.0.0.1], status=201
func (l *Log) AdminAction(a Admin) {
	if l == nil {
		return
	}
	ln := &line{event: EventAdmin}
	ln.text.WriteString("admin: ")
	ln.kv("action", clean(a.Action))
	if a.Object != "" {
		ln.kv("object", clean(a.Object))
	}
	ln.kv("by", clean(a.Who))
	ln.kv("client", client(a.Client))
	ln.status(strconv.Itoa(a.Code), clean(a.Error))
	kind := ""
	if a.Code == 401 || a.Code == 403 || a.Code == 429 {
		kind = "admin " + strconv.Itoa(a.Code)
	}
	l.write(ln, kind)
}
