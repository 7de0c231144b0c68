package actors

import (
	"time"

	"github.com/homing-mail/homing/mail"
)

// verdict is what the queue does with one recipient after one attempt.
type verdict int

const (
	// delivered: the recipient has the message (2xx).
	delivered verdict = iota
	// deferred: try again at next (4xx).
	deferred
	// expired: a temporary failure past the queue lifetime; the recipient
	// fails with 5.4.7 (RFC 3463: delivery time expired).
	expired
	// overQuota: a full mailbox (4.2.2) for longer than the over-quota
	// time; the recipient fails with 5.2.2.
	overQuota
	// failed: a permanent failure (5xx).
	failed
)

func (v verdict) String() string {
	return [...]string{"delivered", "deferred", "expired", "over quota", "failed"}[v]
}

// decision is the outcome of policy for one recipient: its new state and
// what the queue records.
type decision struct {
	verdict verdict
	// status is the RFC 3463 status recorded (the result's, made
	// permanent for expired and over quota).
	status mail.Status
	// reason is the recipient's LastError ("" when delivered).
	reason string
	// next is when to try again (deferred only).
	next time.Time
}

// state is the recipient state the verdict leads to.
func (d decision) state() mail.RcptState {
	switch d.verdict {
	case delivered:
		return mail.StateDelivered
	case deferred:
		return mail.StateDeferred
	}
	return mail.StateFailed
}

// policy decides what one attempt's result means for a recipient (RFC 5321
// §4.5.4.1 retry strategy, Postfix's schedule). It is a pure function of
// its inputs:
//
//   - res is the attempt's result, at when it arrived;
//   - attempts is the number of attempts made, this one included;
//   - firstTemp is when the current run of temporary failures began (at
//     for the first one), received when the message was queued;
//   - local says the recipient is a local account (Local Delivery).
//
// A 2xx is delivered; a 5xx failed. A 4xx is deferred by the backoff for
// the attempt count, unless the message has been queued for MaxLifetime
// (expired, 5.4.7) or the mailbox has been full (4.2.2) for
// OverQuotaTimeout (overQuota, 5.2.2). A local recipient whose backend did
// not answer or had no owner (any 4.4.x: handoff, restart, cut off) is
// retried after at most LocalRetry, since that is usually over in seconds.
func (c *Config) policy(res mail.Result, at time.Time, attempts int, firstTemp, received time.Time, local bool) decision {
	switch {
	case res.OK():
		return decision{verdict: delivered, status: res.Status}
	case !res.Temporary():
		return decision{verdict: failed, status: res.Status.Permanent(), reason: res.String()}
	case at.Sub(received) >= c.MaxLifetime:
		return decision{verdict: expired, status: mail.StatusExpired.Permanent(), reason: "delivery time expired: " + res.String()}
	case res.Status.SameCondition(mail.StatusMailboxFull) && at.Sub(firstTemp) >= c.OverQuotaTimeout:
		return decision{verdict: overQuota, status: mail.StatusMailboxFullPerm, reason: "mailbox full: " + res.String()}
	}
	delay := c.backoff(attempts)
	if local && res.Status.Subject() == mail.StatusNoAnswer.Subject() {
		delay = min(delay, c.LocalRetry)
	}
	return decision{verdict: deferred, status: res.Status, reason: res.String(), next: at.Add(delay)}
}
