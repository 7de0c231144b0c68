package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
)

// Queue mode Remotely (design.md, mail flow 6): a message generated here
// is stored as a "temp file" marked Transfer and handed to a member whose
// mode is Locally for Others. On any failure this node processes it
// itself: nothing is ever lost.

// transferred: the outcome of handing a message to a Locally-for-Others
// member. With err nil, member has it queued; otherwise msg is the message
// processed here by Enqueuer.ProcessHere (nil when that failed too).
type transferred struct {
	id       string
	member   string
	msg      *mail.Message
	err      error
	discard  bool // a rule discarded it when it was processed here
	rejected bool // a rule refused it when it was processed here
}

// errNoTransferer: this node has no way to reach members.
var errNoTransferer = mail.TemporaryError("no transferer on this node")

// transfer hands e to a member that processes queues for others. The
// attempt, and the fallback through Enqueuer.ProcessHere, run in a
// goroutine that reports back with transferred.
func (q *queueActor) transfer(ctx actor.Context, e *qentry) {
	if !q.takeSlot(e) || !q.loadBody(ctx, e) {
		return
	}
	e.transferring = true
	msg := snapshot(e.msg)
	root, self := ctx.ActorSystem().Root, ctx.Self()
	go func() {
		tctx, cancel := context.WithTimeout(q.base, q.cfg.RelayTimeout)
		defer cancel()
		var member string
		err := errNoTransferer
		if q.transferer != nil {
			member, err = q.transferer.Transfer(tctx, msg)
		}
		if err == nil {
			root.Send(self, &transferred{id: msg.Envelope.ID, member: member})
			return
		}
		// Processed here after all: this queue takes it, so its rules run
		// here (once), then it is routed and stored as processed.
		discard, perr := q.enq.ProcessHere(tctx, msg)
		switch {
		case discard:
			root.Send(self, &transferred{id: msg.Envelope.ID, msg: msg, discard: true, err: err})
		case perr != nil:
			root.Send(self, &transferred{id: msg.Envelope.ID, err: fmt.Errorf("%v; processing here: %w", err, perr),
				rejected: mail.AsError(perr) != nil})
		default:
			root.Send(self, &transferred{id: msg.Envelope.ID, msg: msg, err: err})
		}
	}()
}

func (q *queueActor) transferred(ctx actor.Context, m *transferred) {
	e := q.entries[m.id]
	if e == nil || !e.transferring {
		return
	}
	e.transferring = false
	q.active--
	defer q.pump(ctx)
	switch {
	case m.err == nil:
		q.stats.Journal.Record(m.id, "transferred", "handed to "+m.member)
		q.stats.Transferred.Add(1)
		q.stats.result("transfer", "transferred")
		q.log.Info("transferred to a member that processes queues for others", "queueID", m.id, "member", m.member)
		q.remove(m.id)
	case m.discard:
		q.log.Info("transfer failed; processed here and discarded by a rule", "queueID", m.id, "err", m.err)
		q.remove(m.id)
	case m.rejected:
		// Generated here, refused here by a rule: fail every recipient and
		// report it to the sender, as a delivery failure.
		q.log.Info("transfer failed; refused here by a rule", "queueID", m.id, "err", m.err)
		var rej *mail.Error
		errors.As(m.err, &rej)
		res := rej.Result()
		now := q.now()
		for _, r := range e.env().Recipients {
			if !r.State.Final() {
				r.State, r.Done, r.Status, r.LastError, r.NextAttempt = mail.StateFailed, now, res.Status.Permanent(), res.String(), time.Time{}
				q.stats.failed(r, "transfer")
			}
		}
		e.env().Transfer = false
		q.finish(ctx, e)
	case m.msg != nil:
		q.stats.Journal.Record(m.id, "transfer-failed", m.err.Error()+"; processed here")
		q.stats.result("transfer", "fallback")
		q.log.Info("transfer failed; processing here", "queueID", m.id, "err", m.err)
		e.msg = m.msg
		q.attempt(ctx, e)
	default:
		q.stats.result("transfer", "retry")
		q.log.Warn("transfer failed and the message cannot be routed here yet; retrying", "queueID", m.id, "err", m.err)
		e.due = q.now().Add(q.cfg.LocalRetry)
		ctx.Send(q.sched, &wake{id: m.id, at: e.due})
	}
}
