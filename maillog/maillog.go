// Package maillog writes the delivery log: one line per event of the mail
// path at info level, in the shape Postfix administrators grep
//
//	01JD5X8Q6M: to=<bob@example.net>, relay=mx.example.net[192.0.2.1]:25, delay=0.12, dsn=2.0.0, status=sent (250 2.0.0 Ok)
//
// for every attempt's verdict on a recipient (sent, deferred, bounced), a
// message queued, transferred to a member, reported on and removed, a
// recipient or message refused at RCPT or DATA, a login that worked or
// failed, and every action of an administrator. The line is the record's
// message; with Options.Fields (--log-format json) its fields are also
// the record's attributes, so `jq 'select(.status=="bounced")'` finds what
// `grep status=bounced` finds.
//
// Lines a stranger can cause at will (refusals, failed logins, refused
// admin requests) pass a burst throttle per kind (package ratelog): a
// flood costs a few lines a second and one count of what was dropped.
// The last lines are kept in memory for the console's live tail (Since).
//
// It imports only mail and ratelog of Homing.
package maillog

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/homing-mail/homing/ratelog"
)

// Events, the "event" field of every line.
const (
	EventQueued      = "queued"
	EventDelivery    = "delivery" // status sent, deferred or bounced
	EventTransferred = "transferred"
	EventReport      = "report"
	EventRemoved     = "removed"
	EventReject      = "reject"
	EventAuth        = "auth"
	EventAdmin       = "admin"
)

// Statuses of a delivery line (Postfix's words).
const (
	StatusSent     = "sent"
	StatusDeferred = "deferred"
	StatusBounced  = "bounced"
)

// Options configures New.
type Options struct {
	// Fields adds every field of a line to its record as attributes (for
	// --log-format json); without it the record carries the line and the
	// queue id only, so that a text log says each thing once.
	Fields bool
	// Keep is how many recent lines Since can return; 0 means
	// DefaultKeep.
	Keep int
	// Burst is how many lines of one kind a stranger can cause per
	// second (refusals, failed logins); 0 means DefaultBurst.
	Burst int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultKeep  = 2000
	DefaultBurst = 10
)

// Entry is one line of the log as the live tail shows it.
type Entry struct {
	Seq     int64     `json:"seq"` // increases by one per line written on this node
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`
	QueueID string    `json:"queueID,omitempty"`
	Line    string    `json:"line"`
}

// Log is one node's delivery log. The zero value and a nil *Log write
// nothing. Safe for concurrent use.
type Log struct {
	log      *slog.Logger
	fields   bool
	throttle *ratelog.Throttle
	now      func() time.Time

	mu   sync.Mutex
	ring []Entry
	next int
	full bool
	seq  int64
}

// New returns the delivery log writing to log (nil: nowhere, but Since
// still answers).
func New(log *slog.Logger, opt Options) *Log {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Keep <= 0 {
		opt.Keep = DefaultKeep
	}
	if opt.Burst <= 0 {
		opt.Burst = DefaultBurst
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Log{log: log, fields: opt.Fields, now: opt.Now, ring: make([]Entry, opt.Keep),
		throttle: ratelog.NewBurstThrottle(opt.Burst, time.Second, opt.Now)}
}

// field is one key=value of a line.
type field struct{ key, value string }

// line is a line being written: its event, queue id, text and fields.
type line struct {
	event, queueID string
	text           strings.Builder
	fields         []field
}

// kv appends ", key=value" (or "key=value" first) to the text and keeps
// the field.
func (ln *line) kv(key, value string) {
	if ln.text.Len() > 0 && !strings.HasSuffix(ln.text.String(), ": ") {
		ln.text.WriteString(", ")
	}
	ln.text.WriteString(key)
	ln.text.WriteByte('=')
	ln.text.WriteString(value)
	ln.fields = append(ln.fields, field{key, value})
}

// status appends ", status=S (reason)".
func (ln *line) status(status, reason string) {
	ln.kv("status", status)
	if reason != "" {
		ln.text.WriteString(" (" + reason + ")")
		ln.fields = append(ln.fields, field{"reason", reason})
	}
}

// write emits ln. throttled names the kind of a line a stranger can
// cause ("" for the others), which passes the burst throttle.
func (l *Log) write(ln *line, throttled string) {
	if l == nil || l.log == nil {
		return
	}
	suppressed := 0
	if throttled != "" {
		ok, n := l.throttle.Allow(throttled)
		if !ok {
			return
		}
		suppressed = n
	}
	text := ln.text.String()
	if suppressed > 0 {
		text += " [" + strconv.Itoa(suppressed) + " more like it suppressed]"
	}
	attrs := make([]slog.Attr, 0, len(ln.fields)+3)
	if ln.queueID != "" {
		attrs = append(attrs, slog.String("queueID", ln.queueID))
	}
	if l.fields {
		attrs = append(attrs, slog.String("event", ln.event))
		for _, f := range ln.fields {
			attrs = append(attrs, slog.String(f.key, f.value))
		}
		if suppressed > 0 {
			attrs = append(attrs, slog.Int("suppressed", suppressed))
		}
	}
	l.log.LogAttrs(context.Background(), slog.LevelInfo, text, attrs...)
	l.keep(Entry{Time: l.now(), Event: ln.event, QueueID: ln.queueID, Line: text})
}

// keep remembers e for Since.
func (l *Log) keep(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e.Seq = l.seq
	l.ring[l.next] = e
	l.next++
	if l.next == len(l.ring) {
		l.next, l.full = 0, true
	}
}

// Since returns the kept lines with a sequence number above after, oldest
// first, at most limit of them (the newest; limit <= 0: all kept).
func (l *Log) Since(after int64, limit int) []Entry {
	if l == nil || l.ring == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.next
	start := 0
	if l.full {
		n, start = len(l.ring), l.next
	}
	out := make([]Entry, 0, min(n, 64))
	for i := 0; i < n; i++ {
		e := l.ring[(start+i)%len(l.ring)]
		if e.Seq > after {
			out = append(out, e)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// maxValue bounds one value of a line (a remote server's reply, a client's
// HELO): what others send must not make a line without end.
const maxValue = 400

// clean makes v one line of printable text of at most maxValue bytes.
func clean(v string) string {
	var b strings.Builder
	space := false
	for _, r := range v {
		if b.Len() >= maxValue {
			b.WriteString("...")
			break
		}
		switch {
		case r == '\r' || r == '\n' || r == '\t' || r == ' ':
			space = true
			continue
		case r < ' ' || r == 0x7f:
			r = '?'
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// angle is an address as Postfix writes it: <addr>, <> for the null
// sender.
func angle(addr string) string { return "<" + clean(addr) + ">" }

// delay is seconds with two decimals, as Postfix's delay=.
func delay(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64)
}

// client is a client address as [ip] ("unknown" when there is none).
func client(ip string) string {
	if ip == "" {
		return "unknown"
	}
	return "[" + clean(ip) + "]"
}
