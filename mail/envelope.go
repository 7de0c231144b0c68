package mail

import (
	"strings"
	"time"
)

// Source says where a message entered Homing. Rules and metrics use it.
type Source string

// The sources of a message.
const (
	SourceSMTP       Source = "smtp"       // the public SMTP listener (port 25 style)
	SourceSubmission Source = "submission" // the authenticated submission listener
	SourceAPI        Source = "api"        // POST /api/v1/submit
	SourceDSN        Source = "dsn"        // a delivery status notification Homing wrote
	SourceCluster    Source = "cluster"    // a transfer from another member
)

// Return is the RFC 3461 §4.3 RET parameter: how much of the original
// message a failure report carries.
type Return string

// The values of RET.
const (
	ReturnDefault Return = ""
	ReturnFull    Return = "FULL"
	ReturnHeaders Return = "HDRS"
)

// Notify is one RFC 3461 §4.1 NOTIFY keyword.
type Notify string

// The NOTIFY keywords.
const (
	NotifyNever   Notify = "NEVER"
	NotifySuccess Notify = "SUCCESS"
	NotifyFailure Notify = "FAILURE"
	NotifyDelay   Notify = "DELAY"
)

// Envelope is everything Homing knows about a queued message except its
// bytes. It is stored beside the body in the queue and must be complete on
// disk before the 250 reply to DATA (RFC 5321 §6.1).
type Envelope struct {
	// ID is the queue id, unique per node and sortable by arrival time.
	ID string `json:"id"`
	// From is the reverse-path without angle brackets; "" is the null
	// sender (RFC 5321 §4.5.5) and never receives a report.
	From string `json:"from"`
	// Recipients with their per-recipient queue state.
	Recipients []*Recipient `json:"rcpts"`

	EnvID    string `json:"envid,omitempty"` // RFC 3461 §4.4 ENVID (xtext decoded)
	Ret      Return `json:"ret,omitempty"`   // RFC 3461 §4.3 RET
	SMTPUTF8 bool   `json:"smtputf8,omitempty"`
	Body8Bit bool   `json:"8bit,omitempty"`

	// Received is when the message was accepted (the 250 to DATA).
	Received time.Time `json:"received"`
	Source   Source    `json:"source"`
	// Auth is the authenticated identity of the submitter, if any.
	Auth string `json:"auth,omitempty"`
	// FromMember is the cluster member whose member-authenticated SMTP
	// session handed this message over (a backend forwarding to the
	// frontends, --forward-to '*'): mail of the cluster itself, which
	// the relaying node signs like its own (dkim).
	FromMember string `json:"fromMember,omitempty"`
	// ClientIP and HELO describe the SMTP client, for reports and logs.
	ClientIP string `json:"clientIP,omitempty"`
	HELO     string `json:"helo,omitempty"`
	// Size is the length of the stored body in bytes.
	Size int64 `json:"size"`

	// Held is set by the administrator: a held message is not attempted
	// until it is released.
	Held bool `json:"held,omitempty"`
	// WarnedDelay records that a delayed-delivery warning was sent.
	WarnedDelay bool `json:"warnedDelay,omitempty"`
	// Transfer: the message was generated on this node in queue mode
	// Remotely and waits to be handed to a Locally-for-Others member. The
	// queue does not attempt it itself unless every transfer fails; then
	// it is processed here (design.md, mail flow 6).
	Transfer bool `json:"transfer,omitempty"`
	// HandedTo and HandedAt (with Transfer, on the node that generated
	// the message): the member it was last handed to and when, written
	// before the transfer starts. While the message is still queued here
	// the hand-over is unconfirmed: the member may hold a copy, and only
	// this node's decision (actors/transfer.go) says which copy goes on.
	HandedTo string    `json:"handedTo,omitempty"`
	HandedAt time.Time `json:"handedAt,omitzero"`
	// Origin (on a Locally-for-Others member): the member that handed
	// this message over. Set while it waits for that member's word that
	// it is this node's to process; cleared when it is processed here.
	Origin string `json:"origin,omitempty"`
	// Damaged, when set, says why the message cannot be processed: its
	// stored body, or its envelope, failed its check (a checksum or
	// length mismatch, an empty value: storage.ErrDamaged). A damaged
	// message is held: never attempted, relayed or delivered, until the
	// administrator deletes it or retries it (which reads it again).
	Damaged string `json:"damaged,omitempty"`
}

// RcptState is the queue state of one recipient.
type RcptState string

// The recipient states. Pending and Deferred are open; Delivered and Failed
// are final.
const (
	StatePending   RcptState = "pending"
	StateDeferred  RcptState = "deferred"
	StateDelivered RcptState = "delivered"
	StateFailed    RcptState = "failed"
)

// Final reports whether no more attempts will be made for the state.
func (s RcptState) Final() bool { return s == StateDelivered || s == StateFailed }

// Recipient is one forward-path of an envelope and its delivery state.
type Recipient struct {
	// Key names the recipient within its message for the message's whole
	// life: AssignKeys sets it when the message is queued, it is stored
	// with the envelope, and every attempt and every answer names the
	// recipient by it (never by its position in a list, which rules and
	// transfers change). Keys are unique within an envelope and never 0.
	Key int `json:"key"`
	// Addr is the recipient as given in RCPT TO, normalised by
	// ParseAddress (domain lower-cased).
	Addr string `json:"addr"`
	// Account is the local account the address resolved to (after
	// aliases); "" for a recipient in a domain that is not local.
	Account string `json:"account,omitempty"`

	Notify []Notify `json:"notify,omitempty"` // RFC 3461 §4.1
	ORcpt  string   `json:"orcpt,omitempty"`  // RFC 3461 §4.2, "rfc822;addr" form

	State       RcptState `json:"state"`
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitempty"`
	// FirstTempFailure is when the current run of temporary failures
	// began (over-quota and similar time-limited conditions use it).
	FirstTempFailure time.Time `json:"firstTempFailure,omitempty"`
	// LastError is the last reply or error, as text for people.
	LastError string `json:"lastError,omitempty"`
	// Status is the RFC 3463 enhanced status code of the last result;
	// RemoteMTA the host that gave it.
	Status    Status    `json:"status,omitempty"`
	RemoteMTA string    `json:"remoteMTA,omitempty"`
	Done      time.Time `json:"done,omitempty"`
}

// Local reports whether the recipient is delivered to a local account.
func (r *Recipient) Local() bool { return r.Account != "" }

// Wants reports whether the recipient asked for a report of kind n. Without
// NOTIFY, RFC 3461 §4.1 lets the server choose: Homing reports failures and
// delays.
func (r *Recipient) Wants(n Notify) bool {
	if len(r.Notify) == 0 {
		return n == NotifyFailure || n == NotifyDelay
	}
	for _, x := range r.Notify {
		if x == NotifyNever {
			return false
		}
		if x == n {
			return true
		}
	}
	return false
}

// Recipient returns the recipient with key, or nil.
func (e *Envelope) Recipient(key int) *Recipient {
	for _, r := range e.Recipients {
		if r.Key == key {
			return r
		}
	}
	return nil
}

// AssignKeys gives every recipient that has no key, or a key another
// recipient has already, a new one: the next after the largest in use.
// Keys already unique stay as they are.
func (e *Envelope) AssignKeys() {
	next, seen := 1, make(map[int]bool, len(e.Recipients))
	for _, r := range e.Recipients {
		next = max(next, r.Key+1)
	}
	for _, r := range e.Recipients {
		if r.Key <= 0 || seen[r.Key] {
			r.Key = next
			next++
		}
		seen[r.Key] = true
	}
}

// Open returns the recipients that are not in a final state.
func (e *Envelope) Open() []*Recipient {
	var out []*Recipient
	for _, r := range e.Recipients {
		if !r.State.Final() {
			out = append(out, r)
		}
	}
	return out
}

// Done reports whether every recipient is in a final state.
func (e *Envelope) Done() bool {
	for _, r := range e.Recipients {
		if !r.State.Final() {
			return false
		}
	}
	return true
}

// Clone returns a deep copy, so that one goroutine may change its copy
// while another reads the original.
func (e *Envelope) Clone() *Envelope {
	c := *e
	c.Recipients = make([]*Recipient, len(e.Recipients))
	for i, r := range e.Recipients {
		rc := *r
		rc.Notify = append([]Notify(nil), r.Notify...)
		c.Recipients[i] = &rc
	}
	return &c
}

// Domain returns the domain part of addr, lower-cased; "" when there is none.
func Domain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}
