package actors

import (
	"github.com/homing-mail/homing/mail"
)

// When the queue asks for a delivery status notification (RFC 3461 §6,
// RFC 3464), and what the journal says about a recipient.

// finalReport returns the DSN job for a message whose recipients are all
// final, or nil when none is due: never to the null sender (RFC 3461 §6.2,
// no loops), failures unless NOTIFY excludes them, successes of local
// delivery when NOTIFY=SUCCESS asked for them.
func finalReport(msg *mail.Message) *dsnJob {
	env := msg.Envelope
	if env.From == "" {
		return nil
	}
	var failed, delivered []int
	for _, r := range env.Recipients {
		switch {
		case r.State == mail.StateFailed && r.Wants(mail.NotifyFailure):
			failed = append(failed, r.Key)
		case r.State == mail.StateDelivered && r.Local() && r.Wants(mail.NotifySuccess):
			delivered = append(delivered, r.Key)
		}
	}
	if len(failed) > 0 {
		return &dsnJob{msg: snapshot(msg), kind: reportFailure, rcpts: failed, also: delivered}
	}
	if len(delivered) > 0 {
		return &dsnJob{msg: snapshot(msg), kind: reportSuccess, rcpts: delivered}
	}
	return nil
}

// delayWarning returns the job of the one "delayed" DSN of a message that
// has waited DelayWarning (Postfix's delay_warning_time), or nil.
func (q *queueActor) delayWarning(msg *mail.Message) *dsnJob {
	env := msg.Envelope
	if q.cfg.DelayWarning <= 0 || env.WarnedDelay || env.From == "" || q.now().Sub(env.Received) < q.cfg.DelayWarning {
		return nil
	}
	var keys []int
	for _, r := range env.Recipients {
		if r.State == mail.StateDeferred && r.Wants(mail.NotifyDelay) {
			keys = append(keys, r.Key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return &dsnJob{msg: snapshot(msg), kind: reportDelay, rcpts: keys}
}

// snapshot is a copy of msg's envelope with its body, for a report.
func snapshot(msg *mail.Message) *mail.Message {
	return &mail.Message{Envelope: msg.Envelope.Clone(), Body: msg.Body}
}

// journalEvent names the journal event of a recipient's state after an
// attempt (a temporary failure past the queue lifetime is a failure).
func journalEvent(r *mail.Recipient) string {
	switch {
	case r.State == mail.StateDelivered && r.Local():
		return "delivered"
	case r.State == mail.StateDelivered:
		return "relayed"
	case r.State == mail.StateFailed:
		return "failed"
	default:
		return "deferred"
	}
}

func journalDetail(res mail.Result, r *mail.Recipient) string {
	switch r.State {
	case mail.StateDelivered:
		if r.Local() {
			return r.Addr + ": stored in the mailbox of " + r.Account
		}
		return r.Addr + ": accepted by " + res.RemoteMTA
	case mail.StateFailed:
		return r.Addr + ": " + r.LastError
	default:
		return r.Addr + ": " + res.String()
	}
}
