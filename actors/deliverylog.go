package actors

import (
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
)

// logged is the delivery log's line for recipient r after the attempt
// that gave res at time at (the queue policy has set r's state, status
// and last error).
func (q *queueActor) logged(env *mail.Envelope, r *mail.Recipient, res mail.Result, at time.Time) maillog.Delivery {
	d := maillog.Delivery{QueueID: env.ID, To: r.Addr, Delay: at.Sub(env.Received), DSN: r.Status, Relay: q.relayOf(r, res)}
	switch r.State {
	case mail.StateDelivered:
		d.Status, d.Reason = maillog.StatusSent, res.String()
	case mail.StateFailed:
		d.Status, d.Reason = maillog.StatusBounced, r.LastError
	default:
		d.Status, d.Reason = maillog.StatusDeferred, r.LastError
	}
	if d.DSN == "" {
		d.DSN = res.Status
	}
	return d
}

// relayOf is where an attempt went, as the delivery log's relay= says it:
// the MX host, address and port of a relay; for Local Delivery the
// member that owns the account, "(local)" when that is this node and
// "(cluster)" when the message crossed the channel; "none" when nobody
// answered.
func (q *queueActor) relayOf(r *mail.Recipient, res mail.Result) string {
	switch {
	case res.Relay == "":
		return "none"
	case !r.Local():
		return res.Relay
	case res.Relay == q.cfg.NodeName:
		return res.Relay + " (local)"
	default:
		return res.Relay + " (cluster)"
	}
}

// reportLogKind is the delivery log's name of a report kind.
func reportLogKind(k reportKind) string {
	switch k {
	case reportDelay:
		return maillog.ReportDelay
	case reportSuccess:
		return maillog.ReportSuccess
	}
	return maillog.ReportFailure
}
