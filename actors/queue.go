package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
)

// Messages the queue actor takes.
type (
	// enqueued: a message is durable in the queue store; attempt it.
	enqueued struct {
		env  *mail.Envelope
		body []byte
	}
	// wake: the scheduler says the message is due.
	wake struct {
		id string
		at time.Time
	}
	// attemptDone: the outcomes of one attempt for some recipients.
	attemptDone struct {
		id       string
		outcomes []outcome
	}
	outcome struct {
		idx int
		res mail.Result
		at  time.Time
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
	// retryLocal: partition owners changed; retry deferred local
	// recipients now.
	retryLocal struct{}
	// queueOldest asks for the arrival time of the oldest queued message.
	queueOldest      struct{}
	queueOldestReply struct{ at time.Time }
	// queueList and queueGet answer the admin API with copies.
	queueList   struct{}
	queueGet    struct{ id string }
	queueAction struct{ id, action string }
	// queueEntries is the answer to queueList and queueGet.
	queueEntries struct {
		entries []*mail.Envelope
		err     error
	}
)

// qentry is the queue actor's view of one queued message.
type qentry struct {
	env      *mail.Envelope
	body     []byte // nil when not in memory; loaded before an attempt
	inflight map[int]bool
	due      time.Time // when the scheduler will wake it; zero = not scheduled
	// reporting: a final DSN is being written; the message is deleted
	// when it is durable.
	reporting bool
	// waiting: the message is due but waits for a slot among the active
	// messages (queueActor.ready).
	waiting bool
	// transferring: a transfer to a Locally-for-Others member is under
	// way (env.Transfer).
	transferring bool
}

// busy reports whether e holds an active slot.
func (e *qentry) busy() bool { return len(e.inflight) > 0 || e.transferring }

// queueActor keeps the in-memory view of this node's durable queue and
// drives delivery: it hands local recipients to the local delivery actor and
// remote ones to the relay actor of their domain, records every outcome,
// retries with backoff, and asks for DSNs (RFC 3461, RFC 3464).
//
// It never waits on the network. Store writes go through the storage group
// commit asynchronously (Update, Delete); the order of writes to one
// message is the order in which this actor submits them.
type queueActor struct {
	cfg        *Config
	store      QueueStore
	relayer    Relayer
	transferer Transferer
	// submit queues generated mail by the node's queue mode (DSNs).
	submit func(ctx context.Context, env *mail.Envelope, body []byte) error
	enq    *Enqueuer
	place  Placement
	stats  *Stats
	log    *slog.Logger
	now    func() time.Time
	// base is cancelled when the node shuts down; relay goroutines use
	// it. (protoactor's Actor.Receive takes no context of the node's life.)
	base context.Context

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
		if e := q.entries[m.env.ID]; e != nil {
			// Already known: read by recovery from the store while the
			// Enqueuer was handing it over, or a report enqueued again
			// after a crash. One entry, one attempt.
			if e.body == nil {
				e.body = m.body
			}
			return
		}
		q.stats.Accepted.Add(1)
		e := &qentry{env: m.env, body: m.body, inflight: map[int]bool{}}
		q.entries[m.env.ID] = e
		q.stats.depth(len(q.entries))
		q.attempt(ctx, e)
	case *wake:
		e := q.entries[m.id]
		if e == nil || !e.due.Equal(m.at) {
			return // stale: rescheduled or gone
		}
		e.due = time.Time{}
		if e.env.Done() {
			q.finish(ctx, e)
			return
		}
		q.attempt(ctx, e)
	case *attemptDone:
		q.done(ctx, m)
	case *transferred:
		q.transferred(ctx, m)
	case *retryLocal:
		q.retryLocal(ctx)
	case *dsnWritten:
		q.reported(ctx, m)
	case *relayIdle:
		// Retire it only if it has received every job sent to it: a job
		// may be on its way while the idle notice was on its way here.
		if r, ok := q.relays[m.domain]; ok && r.pid.Equal(m.pid) && r.sent == m.jobs {
			delete(q.relays, m.domain)
			ctx.Poison(m.pid)
		}
	case *queueOldest:
		var oldest time.Time
		for _, e := range q.entries {
			if oldest.IsZero() || e.env.Received.Before(oldest) {
				oldest = e.env.Received
			}
		}
		ctx.Respond(&queueOldestReply{at: oldest})
	case *queueList:
		out := make([]*mail.Envelope, 0, len(q.entries))
		for _, e := range q.entries {
			out = append(out, e.env.Clone())
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		ctx.Respond(&queueEntries{entries: out})
	case *queueGet:
		if e := q.entries[m.id]; e != nil {
			ctx.Respond(&queueEntries{entries: []*mail.Envelope{e.env.Clone()}})
		} else {
			ctx.Respond(&queueEntries{err: fmt.Errorf("queue entry %s: %w", m.id, mail.ErrNotFound)})
		}
	case *queueAction:
		ctx.Respond(&queueEntries{err: q.action(ctx, m)})
	}
}

// start spawns the helpers and recovers the queue from the store.
func (q *queueActor) start(ctx actor.Context) {
	q.entries = map[string]*qentry{}
	q.relays = map[string]*relayRef{}
	q.sched = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &schedulerActor{stats: q.stats, now: q.now}
	}))
	q.local = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &localDeliveryActor{cfg: q.cfg, place: q.place, stats: q.stats, now: q.now}
	}))
	q.dsn = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &dsnActor{cfg: q.cfg, submit: q.submit, stats: q.stats, log: q.log, now: q.now}
	}))
	n := 0
	err := q.store.Each(func(env *mail.Envelope) error {
		q.entries[env.ID] = &qentry{env: env, inflight: map[int]bool{}}
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
		if e.env.Done() {
			q.finish(ctx, e)
		} else {
			q.attempt(ctx, e)
		}
	}
}

// attempt starts delivery of every open recipient that is due and not in
// flight, and schedules the message's next wake-up otherwise.
func (q *queueActor) attempt(ctx actor.Context, e *qentry) {
	if e.env.Held || e.reporting || e.transferring {
		return
	}
	if e.env.Transfer {
		q.transfer(ctx, e)
		return
	}
	now := q.now()
	var local []int
	remote := map[string][]int{}
	for i, r := range e.env.Recipients {
		if r.State.Final() || e.inflight[i] || r.NextAttempt.After(now) {
			continue
		}
		if r.Local() {
			local = append(local, i)
		} else {
			d := mail.Domain(r.Addr)
			remote[d] = append(remote[d], i)
		}
	}
	if len(local) == 0 && len(remote) == 0 {
		if len(e.inflight) == 0 {
			q.schedule(ctx, e)
		}
		return
	}
	if len(e.inflight) == 0 {
		if q.active >= q.cfg.MaxActive {
			if !e.waiting {
				e.waiting = true
				q.ready = append(q.ready, e.env.ID)
			}
			return
		}
		q.active++
	}
	if e.body == nil {
		body, err := q.store.Body(e.env.ID)
		if err != nil {
			q.log.Error("reading queued body", "queueID", e.env.ID, "err", err)
			if len(e.inflight) == 0 {
				q.active--
			}
			e.due = now.Add(q.cfg.MinBackoff)
			ctx.Send(q.sched, &wake{id: e.env.ID, at: e.due})
			return
		}
		e.body = body
	}
	if len(local) > 0 {
		job := &localJob{id: e.env.ID, from: e.env.From, received: e.env.Received, body: e.body}
		for _, i := range local {
			e.inflight[i] = true
			r := e.env.Recipients[i]
			job.rcpts = append(job.rcpts, localRcpt{idx: i, addr: r.Addr, account: r.Account})
		}
		ctx.Request(q.local, job)
	}
	for domain, idxs := range remote {
		job := &relayJob{id: e.env.ID, env: e.env.Clone(), body: e.body, idxs: idxs}
		for _, i := range idxs {
			e.inflight[i] = true
			job.rcpts = append(job.rcpts, job.env.Recipients[i])
		}
		ctx.Send(q.relay(ctx, domain), job)
	}
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
			return &relayActor{domain: domain, cfg: q.cfg, relayer: q.relayer, stats: q.stats, base: q.base, now: q.now}
		}))
		r = &relayRef{pid: pid}
		q.relays[domain] = r
	}
	r.sent++
	return r.pid
}

// done records the outcomes of an attempt.
func (q *queueActor) done(ctx actor.Context, m *attemptDone) {
	e := q.entries[m.id]
	if e == nil {
		return // deleted by the administrator meanwhile
	}
	env := e.env
	for _, o := range m.outcomes {
		if o.idx < 0 || o.idx >= len(env.Recipients) {
			continue
		}
		delete(e.inflight, o.idx)
		r := env.Recipients[o.idx]
		if r.State.Final() {
			continue
		}
		r.Attempts++
		r.Status, r.RemoteMTA = o.res.Status, o.res.RemoteMTA
		path := "relay"
		if r.Local() {
			path = "local"
		}
		switch {
		case o.res.OK():
			r.State, r.Done, r.LastError, r.NextAttempt = mail.StateDelivered, o.at, "", time.Time{}
			q.stats.delivered(o.at.Sub(env.Received))
			if r.Local() {
				q.stats.DeliveredLocal.Add(1)
			} else {
				q.stats.Relayed.Add(1)
			}
			q.stats.result(path, "delivered")
			q.stats.relayResult(r, "delivered")
		case o.res.Temporary():
			r.LastError = o.res.String()
			if r.FirstTempFailure.IsZero() {
				r.FirstTempFailure = o.at
			}
			switch {
			case o.at.Sub(env.Received) >= q.cfg.MaxLifetime:
				q.fail(r, o.at, "4.4.7", "delivery time expired: "+o.res.String(), path)
			case strings.HasPrefix(o.res.Status, "4.2.2") && o.at.Sub(r.FirstTempFailure) >= q.cfg.OverQuotaTimeout:
				q.fail(r, o.at, "5.2.2", "mailbox full: "+o.res.String(), path)
			default:
				r.State = mail.StateDeferred
				delay := q.cfg.backoff(r.Attempts)
				if r.Local() && strings.HasPrefix(o.res.Status, "4.4.") {
					// The owning backend did not answer or there is
					// none right now (handoff, restart, cut off): that
					// is usually over in seconds.
					delay = min(delay, q.cfg.LocalRetry)
				}
				r.NextAttempt = o.at.Add(delay)
				q.stats.Deferred.Add(1)
				q.stats.result(path, "deferred")
				q.stats.relayResult(r, "deferred")
			}
		default:
			q.fail(r, o.at, o.res.Status, o.res.String(), path)
		}
		q.stats.Journal.Record(env.ID, journalEvent(r), journalDetail(o.res, r))
	}
	if len(e.inflight) == 0 {
		q.active--
		q.finish(ctx, e)
		q.pump(ctx)
	}
}

// retryLocal makes every deferred local recipient due now.
func (q *queueActor) retryLocal(ctx actor.Context) {
	now := q.now()
	for _, e := range q.entries {
		due := false
		for _, r := range e.env.Recipients {
			if r.Local() && r.State == mail.StateDeferred && r.NextAttempt.After(now) {
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

// transferred: the outcome of handing a message to a Locally-for-Others
// member. With err nil, member has it queued; otherwise env is the message
// routed for processing here (or nil when routing failed too).
type transferred struct {
	id       string
	member   string
	env      *mail.Envelope
	body     []byte
	err      error
	discard  bool // a rule discarded it when it was processed here
	rejected bool // a rule refused it when it was processed here
}

// isReject reports whether err is a rule's refusal.
func isReject(err error) bool {
	var rej *mail.RejectError
	return errors.As(err, &rej)
}

// transfer hands e (generated here in queue mode Remotely) to a member
// that processes queues for others. The attempt runs in a goroutine; on
// any failure the message is routed and processed here (mail flow 6:
// nothing is ever lost).
func (q *queueActor) transfer(ctx actor.Context, e *qentry) {
	if q.active >= q.cfg.MaxActive {
		if !e.waiting {
			e.waiting = true
			q.ready = append(q.ready, e.env.ID)
		}
		return
	}
	if e.body == nil {
		body, err := q.store.Body(e.env.ID)
		if err != nil {
			q.log.Error("reading queued body", "queueID", e.env.ID, "err", err)
			e.due = q.now().Add(q.cfg.MinBackoff)
			ctx.Send(q.sched, &wake{id: e.env.ID, at: e.due})
			return
		}
		e.body = body
	}
	q.active++
	e.transferring = true
	env, body := e.env.Clone(), e.body
	root, self := ctx.ActorSystem().Root, ctx.Self()
	go func() {
		tctx, cancel := context.WithTimeout(q.base, q.cfg.RelayTimeout)
		defer cancel()
		var member string
		err := errors.New("no transferer")
		if q.transferer != nil {
			member, err = q.transferer.Transfer(tctx, env, body)
		}
		if err == nil {
			root.Send(self, &transferred{id: env.ID, member: member})
			return
		}
		// Processed here after all: this queue takes it, so its rules run
		// here (once), then it is routed and stored as processed.
		env.Transfer = false
		out, discard, perr := q.enq.process(tctx, env, body)
		if perr == nil && !discard {
			env.Size = int64(len(out))
			perr = q.enq.route(tctx, env)
		}
		if perr == nil && !discard {
			perr = q.store.Put(tctx, env, out)
		}
		switch {
		case discard:
			root.Send(self, &transferred{id: env.ID, env: env, discard: true, err: err})
		case perr != nil:
			root.Send(self, &transferred{id: env.ID, err: fmt.Errorf("%v; processing here: %w", err, perr), rejected: isReject(perr)})
		default:
			root.Send(self, &transferred{id: env.ID, env: env, body: out, err: err})
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
		var rej *mail.RejectError
		errors.As(m.err, &rej)
		for _, r := range e.env.Recipients {
			if !r.State.Final() {
				q.fail(r, q.now(), rej.Status, fmt.Sprintf("%d %s %s", rej.Code, rej.Status, rej.Text), "transfer")
			}
		}
		e.env.Transfer = false
		q.finish(ctx, e)
	case m.env != nil:
		q.stats.Journal.Record(m.id, "transfer-failed", m.err.Error()+"; processed here")
		q.stats.result("transfer", "fallback")
		q.log.Info("transfer failed; processing here", "queueID", m.id, "err", m.err)
		e.env, e.body = m.env, m.body
		q.attempt(ctx, e)
	default:
		q.stats.result("transfer", "retry")
		q.log.Warn("transfer failed and the message cannot be routed here yet; retrying", "queueID", m.id, "err", m.err)
		e.due = q.now().Add(q.cfg.LocalRetry)
		ctx.Send(q.sched, &wake{id: m.id, at: e.due})
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

func (q *queueActor) fail(r *mail.Recipient, at time.Time, status, text, path string) {
	switch {
	case len(status) > 1 && status[0] == '4':
		status = "5" + status[1:] // 4.4.7 expired -> 5.4.7 (RFC 3463)
	case status == "" || status[0] != '5':
		status = "5.0.0"
	}
	r.State, r.Done, r.Status, r.LastError, r.NextAttempt = mail.StateFailed, at, status, text, time.Time{}
	q.stats.relayResult(r, "failed")
	q.stats.Bounced.Add(1)
	q.stats.result(path, "failed")
}

// finish runs when no attempt of e is in flight: a message whose every
// recipient is final leaves the queue (after its DSN is durable); any
// other is persisted and scheduled.
func (q *queueActor) finish(ctx actor.Context, e *qentry) {
	env := e.env
	if env.Done() {
		if job := q.finalReport(e); job != nil {
			e.reporting = true
			ctx.Send(q.dsn, job)
			return
		}
		q.remove(env.ID)
		return
	}
	if q.cfg.DelayWarning > 0 && !env.WarnedDelay && env.From != "" &&
		q.now().Sub(env.Received) >= q.cfg.DelayWarning {
		var idxs []int
		for i, r := range env.Recipients {
			if r.State == mail.StateDeferred && r.Wants(mail.NotifyDelay) {
				idxs = append(idxs, i)
			}
		}
		if len(idxs) > 0 {
			env.WarnedDelay = true
			ctx.Send(q.dsn, &dsnJob{env: env.Clone(), body: e.body, kind: reportDelay, idxs: idxs})
		}
	}
	q.write(env.ID, q.store.Update(env.Clone()))
	e.body = nil // deferred: keep memory for what is moving
	q.schedule(ctx, e)
}

// finalReport returns the DSN job for a message whose recipients are all
// final, or nil when none is due: never to the null sender (RFC 3461 §6.2,
// no loops), failures unless NOTIFY excludes them, successes of local
// delivery when NOTIFY=SUCCESS asked for them.
func (q *queueActor) finalReport(e *qentry) *dsnJob {
	env := e.env
	if env.From == "" {
		return nil
	}
	var failed, delivered []int
	for i, r := range env.Recipients {
		switch {
		case r.State == mail.StateFailed && r.Wants(mail.NotifyFailure):
			failed = append(failed, i)
		case r.State == mail.StateDelivered && r.Local() && r.Wants(mail.NotifySuccess):
			delivered = append(delivered, i)
		}
	}
	if len(failed) > 0 {
		return &dsnJob{env: env.Clone(), body: e.body, kind: reportFailure, idxs: failed, also: delivered}
	}
	if len(delivered) > 0 {
		return &dsnJob{env: env.Clone(), body: e.body, kind: reportSuccess, idxs: delivered}
	}
	return nil
}

func (q *queueActor) reported(ctx actor.Context, m *dsnWritten) {
	e := q.entries[m.id]
	if e == nil || !e.reporting {
		return
	}
	e.reporting = false
	if m.err != nil {
		// The message stays queued until its report is durable.
		q.log.Error("writing DSN failed; will retry", "queueID", m.id, "err", m.err)
		e.due = q.now().Add(q.cfg.MinBackoff)
		ctx.Send(q.sched, &wake{id: m.id, at: e.due})
		return
	}
	q.remove(m.id)
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

func (q *queueActor) remove(id string) {
	q.stats.Journal.Record(id, "left", "removed from the queue")
	if e := q.entries[id]; e != nil && e.busy() {
		q.active-- // its outcomes will find no entry
	}
	delete(q.entries, id)
	q.stats.depth(len(q.entries))
	q.write(id, q.store.Delete(id))
}

// write logs a failed asynchronous store write. A lost Update only means a
// repeated attempt (delivery is idempotent); a lost Delete a repeated
// attempt after restart.
func (q *queueActor) write(id string, ch <-chan error) {
	go func() {
		if err := <-ch; err != nil {
			q.log.Error("queue store write failed", "queueID", id, "err", err)
		}
	}()
}

// schedule asks the scheduler to wake e at its earliest next attempt.
func (q *queueActor) schedule(ctx actor.Context, e *qentry) {
	var next time.Time
	for _, r := range e.env.Recipients {
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
	ctx.Send(q.sched, &wake{id: e.env.ID, at: next})
}

// action performs an administrator's request on one message.
func (q *queueActor) action(ctx actor.Context, m *queueAction) error {
	e := q.entries[m.id]
	if e == nil {
		return fmt.Errorf("queue entry %s: %w", m.id, mail.ErrNotFound)
	}
	switch m.action {
	case "hold":
		e.env.Held = true
		q.write(m.id, q.store.Update(e.env.Clone()))
	case "release", "retry":
		e.env.Held = false
		now := q.now()
		for _, r := range e.env.Recipients {
			if !r.State.Final() {
				r.NextAttempt = now
			}
		}
		q.write(m.id, q.store.Update(e.env.Clone()))
		e.due = time.Time{}
		q.attempt(ctx, e)
	case "delete":
		if len(e.inflight) > 0 {
			// Outcomes of the attempt in flight will find no entry.
			q.log.Info("deleting a message with an attempt in flight", "queueID", m.id)
		}
		q.remove(m.id)
	default:
		return fmt.Errorf("%w: unknown queue action %q", errInvalid, m.action)
	}
	return nil
}
