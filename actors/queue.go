package actors

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
	"github.com/homing-mail/homing/storage"
)

// Messages the queue actor takes.
type (
	// enqueued: a message is durable in the queue store; attempt it.
	enqueued struct{ msg *mail.Message }
	// wake: the scheduler says the message is due.
	wake struct {
		id string
		at time.Time
	}
	// attemptDone: the answers of one attempt, one per recipient
	// attempted, each naming its recipient's key.
	attemptDone struct {
		id      string
		results []mail.Result
	}
	// dsnWritten: the DSN writer enqueued (or failed to enqueue) the
	// report about message id.
	dsnWritten struct {
		id  string
		err error
	}
	// relayIdle: a relay actor has had nothing to do for a while; jobs is
	// how many jobs it has received in all.
	relayIdle struct {
		domain string
		pid    *actor.PID
		jobs   int
	}
	// retryLocal: the owners of these partitions changed or came back;
	// retry now the local recipients that wait for them.
	retryLocal struct{ partitions []int }
)

// qentry is the queue actor's view of one queued message.
type qentry struct {
	msg *mail.Message // msg.Body is nil when not in memory; loaded before an attempt
	// inflight holds the keys of the recipients with an attempt in flight.
	inflight map[int]bool
	due      time.Time // when the scheduler will wake it; zero = not scheduled
	// reporting: a final DSN is being written; the message is deleted
	// when it is durable.
	reporting bool
	// waiting: the message is due but waits for a slot among the active
	// messages (queueActor.ready).
	waiting bool
	// xfer: the transfer protocol's state of a message that waits for a
	// transfer decision (env.Transfer or env.Origin; transfer.go).
	xfer xferState
}

func (e *qentry) env() *mail.Envelope { return e.msg.Envelope }

// busy reports whether e holds an active slot.
func (e *qentry) busy() bool { return len(e.inflight) > 0 || e.xfer.step != xferNone }

// queueActor keeps the in-memory view of this node's durable queue and
// drives delivery: it hands each due message's local recipients to the
// local delivery actor and its remote ones to the relay actor of their
// domain (one attempt, a *mail.Message, each), records every answer by
// the queue policy (policy.go), retries with backoff, and asks for DSNs
// (report.go). Messages generated here in queue mode Remotely are handed
// to a member instead (transfer.go); the administrator's operations are in
// queueadmin.go.
//
// It never waits on the network, a sync, rules or filters. Store writes go
// through the storage group commit asynchronously (Update, Delete); the
// order of writes to one message is the order in which this actor submits
// them.
type queueActor struct {
	cfg        *Config
	store      QueueStore
	relayer    Relayer
	transferer Transferer
	peers      TransferPeers
	// submitter queues generated mail by the node's queue mode (DSNs).
	submitter Submitter
	enq       *Enqueuer
	place     Placement
	stats     *Stats
	mlog      *maillog.Log // the delivery log
	log       *slog.Logger
	now       func() time.Time
	// base is cancelled when the node shuts down; relay goroutines use
	// it. (protoactor's Actor.Receive takes no context of the node's life.)
	base context.Context
	// disp runs Local Delivery's mailbox (dispatcher.go); nil = protoactor's.
	disp actor.Dispatcher

	entries map[string]*qentry
	// active counts messages with an attempt in flight; at most
	// cfg.MaxActive, so that a large queue (after a restart, an outage)
	// does not load every body at once. ready holds due messages waiting
	// for a slot, oldest first (Postfix's active queue, qmgr).
	active int
	ready  []string
	relays map[string]*relayRef
	local  *actor.PID
	sched  *actor.PID
	dsn    *actor.PID
}

func (q *queueActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		q.stats.started(KindQueue)
		q.start(ctx)
	case *actor.Stopped:
		q.stats.stopped(KindQueue)
	case *enqueued:
		if e := q.entries[m.msg.Envelope.ID]; e != nil {
			// Already known: read by recovery from the store while the
			// Enqueuer was handing it over, or a report enqueued again
			// after a crash. One entry, one attempt.
			if e.msg.Body == nil {
				e.msg.Body = m.msg.Body
			}
			return
		}
		q.stats.Accepted.Add(1)
		e := &qentry{msg: m.msg, inflight: map[int]bool{}}
		q.entries[m.msg.Envelope.ID] = e
		q.stats.depth(len(q.entries))
		q.attempt(ctx, e)
	case *wake:
		e := q.entries[m.id]
		if e == nil || !e.due.Equal(m.at) {
			return // stale: rescheduled or gone
		}
		e.due = time.Time{}
		if e.env().Done() {
			q.finish(ctx, e)
			return
		}
		q.attempt(ctx, e)
	case *attemptDone:
		q.done(ctx, m)
	case *xferSent:
		q.sent(ctx, m)
	case *xferAnswer:
		q.answered(ctx, m)
	case *xferDecided:
		q.decided(ctx, m)
	case *processed:
		q.processedHere(ctx, m)
	case *transferAsked:
		q.asked(ctx, m)
	case *retryLocal:
		q.retryLocal(ctx, m.partitions)
	case *dsnWritten:
		q.reported(ctx, m)
	case *relayIdle:
		// Retire it only if it has received every job sent to it: a job
		// may be on its way while the idle notice was on its way here.
		if r, ok := q.relays[m.domain]; ok && r.pid.Equal(m.pid) && r.sent == m.jobs {
			delete(q.relays, m.domain)
			ctx.Poison(m.pid)
		}
	default:
		q.admin(ctx)
	}
}

// start spawns the helpers and recovers the queue from the store.
func (q *queueActor) start(ctx actor.Context) {
	q.entries = map[string]*qentry{}
	q.relays = map[string]*relayRef{}
	q.sched = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &schedulerActor{stats: q.stats, now: q.now}
	}))
	local := actor.PropsFromProducer(func() actor.Actor {
		return &localDeliveryActor{cfg: q.cfg, place: q.place, stats: q.stats}
	})
	if q.disp != nil {
		local.Configure(actor.WithDispatcher(q.disp))
	}
	q.local = ctx.Spawn(local)
	q.dsn = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &dsnActor{cfg: q.cfg, submitter: q.submitter, stats: q.stats, mlog: q.mlog, log: q.log, now: q.now}
	}))
	n := 0
	err := q.store.Each(func(env *mail.Envelope) error {
		env.AssignKeys() // envelopes queued before recipients had keys
		q.entries[env.ID] = &qentry{msg: &mail.Message{Envelope: env}, inflight: map[int]bool{}}
		n++
		return nil
	})
	if err != nil {
		q.log.Error("queue recovery incomplete", "err", err)
	}
	q.stats.depth(len(q.entries))
	if n > 0 {
		q.log.Info("queue recovered", "messages", n)
	}
	for _, e := range q.entries {
		if e.env().Transfer && e.env().Damaged == "" && !q.recoverTransfer(e) {
			continue
		}
		switch {
		case e.env().Damaged != "":
			// Held as damaged (by an earlier run or by homing check
			// --repair; an envelope that does not decode has no
			// recipients and would look done): left alone.
			q.log.Warn("queued message held as damaged", "queueID", e.env().ID, "reason", e.env().Damaged)
		case e.env().Done():
			q.finish(ctx, e)
		default:
			q.attempt(ctx, e)
		}
	}
}

// attempt starts delivery of every open recipient that is due and not in
// flight, and schedules the message's next wake-up otherwise.
func (q *queueActor) attempt(ctx actor.Context, e *qentry) {
	if e.env().Held || e.env().Damaged != "" || e.reporting || e.xfer.step != xferNone {
		return
	}
	if e.env().Transfer || e.env().Origin != "" {
		q.transferStep(ctx, e)
		return
	}
	now := q.now()
	var local []int
	remote := map[string][]int{}
	var domains []string // in the order of first appearance
	for _, r := range e.env().Recipients {
		if r.State.Final() || e.inflight[r.Key] || r.NextAttempt.After(now) {
			continue
		}
		if r.Local() {
			local = append(local, r.Key)
			continue
		}
		d := mail.Domain(r.Addr)
		if remote[d] == nil {
			domains = append(domains, d)
		}
		remote[d] = append(remote[d], r.Key)
	}
	if len(local) == 0 && len(remote) == 0 {
		if len(e.inflight) == 0 {
			q.schedule(ctx, e)
		}
		return
	}
	if len(e.inflight) == 0 && q.cannotRecord() {
		// The queue's disk is so full that the outcome could not be
		// written: a relay would be repeated after a restart. Wait for
		// space (the free-space guard logs the condition).
		e.due = now.Add(spaceWait)
		ctx.Send(q.sched, &wake{id: e.env().ID, at: e.due})
		return
	}
	if !q.takeSlot(e) {
		return
	}
	if !q.loadBody(ctx, e) {
		return
	}
	if len(local) > 0 {
		q.start1(ctx, e, local, q.local)
	}
	for _, d := range domains {
		q.start1(ctx, e, remote[d], q.relay(ctx, d))
	}
}

// start1 sends the attempt of e for keys to the actor pid.
func (q *queueActor) start1(ctx actor.Context, e *qentry, keys []int, pid *actor.PID) {
	for _, k := range keys {
		e.inflight[k] = true
	}
	ctx.Request(pid, e.msg.For(keys...))
}

// takeSlot reserves an active slot for e when it has none yet; false means
// it waits in line (pump starts it).
func (q *queueActor) takeSlot(e *qentry) bool {
	if e.busy() {
		return true
	}
	if q.active >= q.cfg.MaxActive {
		if !e.waiting {
			e.waiting = true
			q.ready = append(q.ready, e.env().ID)
		}
		return false
	}
	q.active++
	return true
}

// loadBody reads e's body from the store if it is not in memory. On
// failure the slot taken for e is given back and a retry is scheduled;
// a damaged body (storage.ErrDamaged) holds the message as damaged
// instead: it is never attempted again.
func (q *queueActor) loadBody(ctx actor.Context, e *qentry) bool {
	if e.msg.Body != nil {
		return true
	}
	body, err := q.store.Body(e.env().ID)
	if err == nil {
		e.msg.Body = body
		return true
	}
	if errors.Is(err, storage.ErrDamaged) {
		if !e.busy() {
			q.active--
		}
		q.damaged(e, err)
		q.pump(ctx)
		return false
	}
	q.log.Error("reading queued body", "queueID", e.env().ID, "err", err)
	if !e.busy() {
		q.active--
	}
	e.due = q.now().Add(q.cfg.MinBackoff)
	ctx.Send(q.sched, &wake{id: e.env().ID, at: e.due})
	return false
}

// damaged holds e as damaged: its stored data failed its check, so it is
// never relayed or delivered (its bytes are not what was accepted). The
// mark is persisted, listed (state "damaged", the reason as last error)
// and logged here, once; the administrator deletes the message, or
// retries it once its data is restored.
func (q *queueActor) damaged(e *qentry, err error) {
	env := e.env()
	env.Damaged = err.Error()
	e.msg.Body = nil
	q.log.Error("queued message damaged: held, never relayed or delivered (delete it, or retry it once its data is restored)",
		"queueID", env.ID, "err", err)
	q.stats.queueDamaged()
	q.stats.Journal.Record(env.ID, "damaged", env.Damaged)
	q.write(env.ID, q.store.Update(env.Clone()))
}

// relayRef is the queue's handle on a relay actor.
type relayRef struct {
	pid  *actor.PID
	sent int // jobs sent to it
}

// relay returns the relay actor of domain, spawning it if needed, and
// counts the job about to be sent.
func (q *queueActor) relay(ctx actor.Context, domain string) *actor.PID {
	r, ok := q.relays[domain]
	if !ok {
		pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &relayActor{domain: domain, cfg: q.cfg, relayer: q.relayer, stats: q.stats, base: q.base}
		}))
		r = &relayRef{pid: pid}
		q.relays[domain] = r
	}
	r.sent++
	return r.pid
}

// done records the answers of an attempt by the queue policy.
func (q *queueActor) done(ctx actor.Context, m *attemptDone) {
	e := q.entries[m.id]
	if e == nil {
		return // deleted by the administrator meanwhile
	}
	env, at := e.env(), q.now()
	relayed := false
	for _, res := range m.results {
		r := env.Recipient(res.Rcpt)
		if r == nil || !e.inflight[r.Key] {
			continue
		}
		relayed = relayed || (!r.Local() && res.OK())
		delete(e.inflight, r.Key)
		if res.Damaged != "" {
			// The body failed its check while it was read (a relay
			// aborted its DATA, a backend found it damaged): not an
			// attempt of this recipient, the message's bytes are not
			// what was accepted. Hold it.
			if env.Damaged == "" {
				q.damaged(e, errors.New(res.Damaged))
			}
			continue
		}
		if r.State.Final() {
			continue
		}
		r.Attempts++
		if res.Temporary() && r.FirstTempFailure.IsZero() {
			r.FirstTempFailure = at
		}
		d := q.cfg.policy(res, at, r.Attempts, r.FirstTempFailure, env.Received, r.Local())
		r.State, r.Status, r.RemoteMTA, r.LastError, r.NextAttempt = d.state(), d.status, res.RemoteMTA, d.reason, d.next
		if r.State.Final() {
			r.Done = at
		}
		q.stats.recorded(r, d.verdict, at.Sub(env.Received))
		q.stats.Journal.Record(env.ID, journalEvent(r), journalDetail(res, r))
		q.mlog.Delivery(q.logged(env, r, res, at))
	}
	if len(e.inflight) == 0 {
		q.active--
		if env.Damaged != "" {
			// Held (damaged wrote it); what the other attempts recorded
			// is written with it.
			q.write(env.ID, q.store.Update(env.Clone()))
		} else {
			q.finish(ctx, e)
		}
		q.pump(ctx)
		return
	}
	if relayed {
		// Another server has the message now: record it in the next
		// sync round rather than when the rest of the message's attempts
		// end, so that a crash in between relays it once more to fewer
		// places (at least once, as every MTA: the window is one round).
		q.write(env.ID, q.store.Update(env.Clone()))
	}
}

// retryLocal makes due now the deferred local recipients whose account is
// in one of partitions and whose last attempt failed for want of an
// answer from the owner (network and routing statuses, 4.4.x).
func (q *queueActor) retryLocal(ctx actor.Context, partitions []int) {
	in := make(map[int]bool, len(partitions))
	for _, p := range partitions {
		in[p] = true
	}
	now := q.now()
	for _, e := range q.entries {
		due := false
		for _, r := range e.env().Recipients {
			if r.Local() && r.State == mail.StateDeferred && r.NextAttempt.After(now) &&
				r.Status.Subject() == mail.StatusNoAnswer.Subject() && in[mail.PartitionOf(r.Account, q.cfg.Partitions)] {
				r.NextAttempt = now
				due = true
			}
		}
		if due && len(e.inflight) == 0 && !e.waiting {
			e.due = time.Time{}
			q.attempt(ctx, e)
		}
	}
}

// pump starts waiting messages while there are free slots.
func (q *queueActor) pump(ctx actor.Context) {
	for q.active < q.cfg.MaxActive && len(q.ready) > 0 {
		id := q.ready[0]
		q.ready[0] = ""
		q.ready = q.ready[1:]
		if e := q.entries[id]; e != nil && e.waiting {
			e.waiting = false
			q.attempt(ctx, e)
		}
	}
}

// finish runs when no attempt of e is in flight: a message whose every
// recipient is final leaves the queue (after its DSN is durable); any
// other is persisted and scheduled.
func (q *queueActor) finish(ctx actor.Context, e *qentry) {
	env := e.env()
	if env.Done() {
		if e.msg.Body == nil && env.From != "" {
			// A report quotes the message: read it (a message recovered
			// after a restart is not in memory). Without it the report
			// still goes out, quoting nothing.
			if body, err := q.store.Body(env.ID); err == nil {
				e.msg.Body = body
			} else {
				q.log.Warn("reading the body of a message to report on", "queueID", env.ID, "err", err)
			}
		}
		if job := finalReport(e.msg); job != nil {
			e.reporting = true
			ctx.Send(q.dsn, job)
			return
		}
		q.remove(env.ID)
		return
	}
	if job := q.delayWarning(e.msg); job != nil {
		env.WarnedDelay = true
		ctx.Send(q.dsn, job)
	}
	q.write(env.ID, q.store.Update(env.Clone()))
	e.msg.Body = nil // deferred: keep memory for what is moving
	q.schedule(ctx, e)
}

func (q *queueActor) reported(ctx actor.Context, m *dsnWritten) {
	e := q.entries[m.id]
	if e == nil || !e.reporting {
		return
	}
	e.reporting = false
	if m.err != nil {
		// The message stays queued until its report is durable. (A
		// queue short of space is logged once, by its guard.)
		if errors.Is(m.err, storage.ErrNoSpace) {
			q.log.Debug("writing DSN refused: no space; will retry", "queueID", m.id, "err", m.err)
		} else {
			q.log.Error("writing DSN failed; will retry", "queueID", m.id, "err", m.err)
		}
		e.due = q.now().Add(q.cfg.MinBackoff)
		ctx.Send(q.sched, &wake{id: m.id, at: e.due})
		return
	}
	q.remove(m.id)
}

func (q *queueActor) remove(id string) {
	q.forget(id)
	q.write(id, q.store.Delete(id))
}

// forget drops id from the queue's memory (its store data is deleted by
// the caller).
func (q *queueActor) forget(id string) {
	q.stats.Journal.Record(id, "left", "removed from the queue")
	q.mlog.Removed(id)
	if e := q.entries[id]; e != nil && e.busy() {
		q.active-- // its outcomes will find no entry
	}
	delete(q.entries, id)
	q.stats.depth(len(q.entries))
}

// write logs a failed asynchronous store write. A lost Update only means a
// repeated attempt (delivery is idempotent); a lost Delete a repeated
// attempt after restart. A write refused for want of space is not logged
// per message: the free-space guard says it once.
func (q *queueActor) write(id string, ch <-chan error) {
	go func() {
		if err := <-ch; err != nil {
			if errors.Is(err, storage.ErrNoSpace) {
				q.log.Debug("queue store write refused: no space", "queueID", id, "err", err)
				return
			}
			q.log.Error("queue store write failed", "queueID", id, "err", err)
		}
	}()
}

// spaceWait is how long the queue waits before it tries a message again
// when its disk had no room to record an outcome.
const spaceWait = 5 * time.Second

// cannotRecord reports whether the queue store says it has no room to
// write an attempt's outcome now (storage.QueueStore.CanRecord).
func (q *queueActor) cannotRecord() bool {
	r, ok := q.store.(interface{ CanRecord() error })
	return ok && r.CanRecord() != nil
}

// schedule asks the scheduler to wake e at its earliest next attempt.
func (q *queueActor) schedule(ctx actor.Context, e *qentry) {
	var next time.Time
	for _, r := range e.env().Recipients {
		if r.State.Final() {
			continue
		}
		if next.IsZero() || r.NextAttempt.Before(next) {
			next = r.NextAttempt
		}
	}
	if next.IsZero() {
		next = q.now()
	}
	if !e.due.IsZero() && !e.due.After(next) {
		return // an earlier wake-up is already set
	}
	e.due = next
	ctx.Send(q.sched, &wake{id: e.env().ID, at: next})
}
