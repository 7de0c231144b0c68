package actors

import (
	"fmt"
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// The administrator's questions and actions on the queue actor (the admin
// API's /api/v1/queue). Answers are copies: the queue actor's state never
// leaves it.
type (
	// queueOldest asks for the arrival time of the oldest queued message.
	queueOldest      struct{}
	queueOldestReply struct{ at time.Time }
	// queueList and queueGet answer with copies of envelopes.
	queueList   struct{}
	queueGet    struct{ id string }
	queueAction struct{ id, action string }
	// queueEntries is the answer to queueList, queueGet and queueAction.
	queueEntries struct {
		entries []*mail.Envelope
		err     error
	}
)

// admin answers the administrator's messages; others are ignored.
func (q *queueActor) admin(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *queueOldest:
		var oldest time.Time
		for _, e := range q.entries {
			if oldest.IsZero() || e.env().Received.Before(oldest) {
				oldest = e.env().Received
			}
		}
		ctx.Respond(&queueOldestReply{at: oldest})
	case *queueList:
		out := make([]*mail.Envelope, 0, len(q.entries))
		for _, e := range q.entries {
			out = append(out, e.env().Clone())
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		ctx.Respond(&queueEntries{entries: out})
	case *queueGet:
		if e := q.entries[m.id]; e != nil {
			ctx.Respond(&queueEntries{entries: []*mail.Envelope{e.env().Clone()}})
		} else {
			ctx.Respond(&queueEntries{err: fmt.Errorf("queue entry %s: %w", m.id, mail.ErrNotFound)})
		}
	case *queueAction:
		ctx.Respond(&queueEntries{err: q.action(ctx, m)})
	}
}

// action performs an administrator's request on one message: hold,
// release, retry (both make every open recipient due now) or delete.
func (q *queueActor) action(ctx actor.Context, m *queueAction) error {
	e := q.entries[m.id]
	if e == nil {
		return fmt.Errorf("queue entry %s: %w", m.id, mail.ErrNotFound)
	}
	env := e.env()
	switch m.action {
	case "hold":
		env.Held = true
		q.write(m.id, q.store.Update(env.Clone()))
	case "release", "retry":
		if env.Damaged != "" {
			// Read the message again: its data may have been restored.
			// An envelope that still does not decode cannot be retried.
			stored, err := q.store.Envelope(m.id)
			if err != nil {
				return fmt.Errorf("%w: queue message %s is damaged (%v); delete it", mail.ErrInvalid, m.id, err)
			}
			stored.AssignKeys()
			stored.Damaged = ""
			e.msg, env = &mail.Message{Envelope: stored}, stored
			q.log.Info("retrying a message held as damaged", "queueID", m.id)
		}
		env.Held = false
		now := q.now()
		for _, r := range env.Recipients {
			if !r.State.Final() {
				r.NextAttempt = now
			}
		}
		q.write(m.id, q.store.Update(env.Clone()))
		e.due = time.Time{}
		q.attempt(ctx, e)
	case "delete":
		if env.Transfer && !e.xfer.decision.Decided() {
			// Maybe handed over, unconfirmed: deleting it decides that
			// no member's copy goes on either (transfer.go).
			e.xfer.decision = storage.TransferOutcome{Kept: true}
			q.write(m.id, q.store.KeepTransfer(m.id))
		}
		if len(e.inflight) > 0 {
			// Answers of the attempt in flight will find no entry.
			q.log.Info("deleting a message with an attempt in flight", "queueID", m.id)
		}
		q.remove(m.id)
	default:
		return fmt.Errorf("%w: unknown queue action %q (want retry, hold, release or delete)", mail.ErrInvalid, m.action)
	}
	return nil
}
