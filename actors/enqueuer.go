package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
	"github.com/homing-mail/homing/storage"
)

// Enqueuer is the entrance to this node's queue (the "Enqueuer" of the
// reference design): it runs the content pipeline (server-wide and
// cluster-wide rules, filters), routes every recipient (a local account,
// after aliases, or a remote domain), writes the message durably, and only
// then hands it to the queue actor. It satisfies smtp.Enqueuer and
// smtp.TransferEnqueuer.
//
// Safe for concurrent use by every SMTP session, the admin API, the DSN
// writer and account rules.
type Enqueuer struct {
	store    QueueStore
	dir      *Directory
	pipeline ContentPipeline // nil: no rules
	journal  *Journal
	mlog     *maillog.Log // the delivery log
	root     *actor.RootContext
	queue    *actor.PID
	now      func() time.Time
	// afterTransferStored: Deps.AfterTransferStored (tests only).
	afterTransferStored func(id string)
}

// NewBody implements smtp.BodyStore: a writer for the body of a message
// about to be enqueued, from the queue store (in memory up to its inline
// threshold, a file of the queue beyond it), or in memory when the store
// has none. Enqueue and EnqueueTransfer take the body over: they store it,
// or remove it when the message is not stored.
func (e *Enqueuer) NewBody() (mail.BodyWriter, error) {
	if bs, ok := e.store.(bodyStore); ok {
		return bs.NewBody()
	}
	return new(mail.MemoryBodyWriter), nil
}

// Admit implements smtp.Admitter: nil, or an error wrapping
// mail.ErrNoSpace while the queue store's filesystem is below its
// free-space limit (a store that cannot say admits everything).
func (e *Enqueuer) Admit(size int64) error {
	if a, ok := e.store.(admitter); ok {
		return a.Admit(size)
	}
	return nil
}

// admitter is a QueueStore with a free-space guard (*storage.QueueStore).
type admitter interface {
	Admit(size int64) error
}

// bodyStore is a QueueStore that writes bodies itself
// (*storage.QueueStore).
type bodyStore interface {
	NewBody() (mail.BodyWriter, error)
}

// Enqueue implements smtp.Enqueuer. Recipients in a local domain whose
// Account is not set yet are resolved here; one that does not exist is
// recorded as failed (5.1.1) so the sender gets a report, and one that
// cannot be resolved now makes the whole call fail temporarily. A message
// marked for transfer (queue mode Remotely) is stored as it is: it is
// routed where it is processed. A body from NewBody that is not stored
// (a refusal, a discard, a failure before the store took it) is removed.
func (e *Enqueuer) Enqueue(ctx context.Context, msg *mail.Message) error {
	discard, err := e.prepare(ctx, msg)
	if err != nil || discard {
		storage.DiscardBody(msg.Body)
		return err
	}
	if err := e.store.Put(ctx, msg); err != nil {
		// Only a body the store did not take: one it took may still be
		// committed (ctx), and goes as an orphan at the next open if not.
		storage.DiscardBody(msg.Body)
		return fmt.Errorf("queueing %s: %w", msg.Envelope.ID, err)
	}
	e.note(msg, "")
	e.root.Send(e.queue, &enqueued{msg: msg})
	return nil
}

// EnqueueTransfer implements smtp.TransferEnqueuer: a message handed over
// by another member is queued once, however often the transfer is
// repeated. Its envelope names the member it came from (Origin): it is
// stored as it is, held, and processed here (rules, filters, routing,
// delivery) only once that member says it is this node's to process
// (transfer.go).
func (e *Enqueuer) EnqueueTransfer(ctx context.Context, msg *mail.Message) (bool, error) {
	if msg.Envelope == nil || msg.Envelope.Origin == "" {
		storage.DiscardBody(msg.Body)
		return false, fmt.Errorf("%w: a transfer without the member it came from", mail.ErrInvalid)
	}
	discard, err := e.prepare(ctx, msg)
	if err != nil || discard {
		storage.DiscardBody(msg.Body)
		return false, err
	}
	dup, err := e.store.PutTransfer(ctx, msg)
	if err != nil || dup {
		// A duplicate stored nothing: its body goes.
		storage.DiscardBody(msg.Body)
	}
	if err != nil {
		return false, fmt.Errorf("queueing transfer %s: %w", msg.Envelope.ID, err)
	}
	if !dup && e.afterTransferStored != nil {
		e.afterTransferStored(msg.Envelope.ID)
	}
	if !dup {
		e.note(msg, " (handed over by a member)")
		e.root.Send(e.queue, &enqueued{msg: msg})
	}
	return dup, nil
}

// ProcessHere takes over a message that was queued here waiting for a
// transfer decision (transfer.go): one generated here (queue mode
// Remotely) that this node decided to keep, or one a member handed over
// that its origin said is this node's. It runs the content pipeline and
// routes the recipients, as Enqueue would have, and stores the result in
// place of the waiting copy. discard: a rule dropped it. An error carrying
// a *mail.Error is a rule's refusal. The caller (the queue actor's
// goroutine) then processes msg itself; nothing is sent to the queue
// actor.
func (e *Enqueuer) ProcessHere(ctx context.Context, msg *mail.Message) (discard bool, err error) {
	env := msg.Envelope
	env.Transfer, env.Origin, env.HandedTo, env.HandedAt = false, "", "", time.Time{}
	if discard, err = e.prepare(ctx, msg); err != nil || discard {
		return discard, err
	}
	return false, e.store.Put(ctx, msg)
}

// note records the arrival of env in the journal and the delivery log,
// with the recipients that failed at once (no such mailbox).
func (e *Enqueuer) note(msg *mail.Message, how string) {
	env := msg.Envelope
	e.journal.RecordMessage(env, msg.Body)
	e.mlog.Queued(env, strings.TrimSpace(strings.Trim(strings.TrimSpace(how), "()")))
	for _, r := range env.Recipients {
		if r.State == mail.StateFailed {
			e.mlog.Delivery(maillog.Delivery{QueueID: env.ID, To: r.Addr, Relay: "none", DSN: r.Status,
				Status: maillog.StatusBounced, Reason: r.LastError})
		}
	}
	if e.journal == nil {
		return
	}
	from := env.From
	if from == "" {
		from = "<>"
	}
	d := fmt.Sprintf("from %s to %d recipient(s), %d bytes, source %s%s", from, len(env.Recipients), env.Size, env.Source, how)
	if env.Transfer {
		d += "; waiting for transfer to a member that processes queues for others"
	}
	if env.Origin != "" {
		d += "; waiting for " + env.Origin + " to confirm it is ours"
	}
	e.journal.Record(env.ID, "queued", d)
}

// prepare sets the id, arrival time, recipient keys and size, runs the
// rules and routes the recipients (a message waiting for transfer, or for
// its origin's word, is left as it is: it is processed where the transfer
// protocol decides).
func (e *Enqueuer) prepare(ctx context.Context, msg *mail.Message) (discard bool, err error) {
	env := msg.Envelope
	if env == nil || msg.Body == nil {
		return false, fmt.Errorf("%w: a message without envelope or body", mail.ErrInvalid)
	}
	if env.ID == "" {
		env.ID = mail.NewID(e.now())
	}
	if env.Received.IsZero() {
		env.Received = e.now()
	}
	if len(env.Recipients) == 0 {
		return false, fmt.Errorf("%w: no recipients", mail.ErrInvalid)
	}
	defer func() {
		env.AssignKeys()
		env.Size = msg.Body.Size()
	}()
	for _, r := range env.Recipients {
		if r.State == "" {
			r.State = mail.StatePending
		}
	}
	if env.Transfer || env.Origin != "" {
		return false, nil
	}
	if e.pipeline != nil {
		if discard, err = e.pipeline.Process(ctx, msg); err != nil || discard {
			return discard, err
		}
	}
	return false, e.route(ctx, env)
}

// route resolves the local recipients of env (aliases to accounts). An
// alias whose target is in a domain that is not local forwards: the
// recipient becomes that address, relayed, with the address the sender
// gave as its original recipient (RFC 3461 ORCPT).
func (e *Enqueuer) route(ctx context.Context, env *mail.Envelope) error {
	defer func() {
		for _, r := range env.Recipients {
			if r.Account != "" && !r.State.Final() && !e.dir.IsLocalDomain(mail.Domain(r.Account)) {
				if r.ORcpt == "" {
					r.ORcpt = "rfc822;" + r.Addr
				}
				r.Addr, r.Account = r.Account, ""
			}
		}
	}()
	for _, r := range env.Recipients {
		if r.State.Final() || r.Account != "" || !e.dir.IsLocalDomain(mail.Domain(r.Addr)) {
			continue
		}
		acct, err := e.dir.Resolve(ctx, r.Addr)
		switch {
		case err == nil:
			r.Account = acct
		case errors.Is(err, mail.ErrNoSuchUser):
			res := mail.Perm(mail.StatusNoSuchUser, "no such mailbox")
			r.State, r.Status, r.LastError, r.Done = mail.StateFailed, res.Status, res.String(), e.now()
		case errors.Is(err, mail.ErrDisabled):
			res := mail.Perm(mail.StatusMailboxDisabled, "mailbox disabled")
			r.State, r.Status, r.LastError, r.Done = mail.StateFailed, res.Status, res.String(), e.now()
		default:
			return fmt.Errorf("resolving %s: %w", r.Addr, err)
		}
	}
	return nil
}
