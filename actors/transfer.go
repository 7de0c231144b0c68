package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
	"github.com/homing-mail/homing/storage"
)

// Queue mode Remotely (design.md, mail flow 6): a message generated here
// is stored as a "temp file" marked Transfer and handed to a member whose
// mode is Locally for Others. Nothing is ever lost, and exactly one of
// the two copies goes on: the one the origin's durable record names.
//
// # The protocol
//
// Two nodes may hold a copy of a message: the origin O (where it was
// generated, mode Remotely) and a taker M (a Locally-for-Others member O
// handed it to). Each copy is durable in its node's queue:
//
//	O's copy   env.Transfer                     not handed over yet
//	           env.Transfer, HandedTo M, at T   handed to M, unconfirmed (written
//	                                            before the transfer session starts)
//	M's copy   env.Origin O                     held: stored (250 sent) and never
//	                                            processed until O says it is M's
//
// Who decides: O, alone, with one record per message (storage o/<id>,
// kept for storage.TransferRetention), written once by O's queue actor
// (which serialises everything about the message) and durable before
// anyone acts on it:
//
//	given M   O's copy is deleted in the same batch; M's copy goes on
//	kept      O processes its copy (Enqueuer.ProcessHere, then its own
//	          queue); any member's copy is dropped
//
// Nothing processes a message without that record: O runs ProcessHere
// only after "kept" is durable (and again after a restart that finds it),
// and M runs ProcessHere only after O answered "yes, it is yours", which O
// sends only once "given M" is durable. O records at most one decision per
// id and never changes it, so at most one copy goes on; and every copy
// waits until the decision is made, so none is lost.
//
// The messages (TransferQuestion, over the cluster channel to the other
// node's "transfers" actor):
//
//   - MINE, M to O: "is the copy of ID I hold mine?". M asks as soon as it
//     stores a transfer (so in the normal case the question and the 250
//     race; either one makes O decide), after every restart, and again
//     with backoff while O does not answer (the copy waits, deferred). O
//     answers from its record: given M -> yes; kept or given to another
//     -> no (M deletes its copy). With no record and its copy still
//     waiting, O decides "given M" (M holds a copy: it asks) and answers
//     yes once that is durable. With neither record nor copy, O answers
//     unknown: it never had the message or lost its data, so M's copy is
//     the only one and goes on, unless the copy is older than O's records
//     last (then O may have decided and forgotten: the copy is held for
//     the administrator).
//   - HOLD, O to M: "do you hold ID?", after a transfer that ended without
//     a clear answer (smtp.TransferError.Unclear: the message was sent and
//     no reply read) and after O restarts with an unconfirmed hand-over.
//     M answers from its queue: yes (O decides "given M"), no (O decides
//     "kept"). A transfer session still in flight at M when it says no
//     stores a copy that then asks MINE and is told no; so "no" needs no
//     fence at M: O's record is the fence.
//   - If M does not answer, O asks again with backoff and decides "kept"
//     once TransferConfirmTimeout has passed since the hand-over
//     (--transfer-confirm-timeout). That is safe at any moment, with M
//     alive and cut off, processing nothing: M's copy cannot go on
//     without O's yes. No timeout runs at M.
//
// Every interleaving: O crashing before the hand-over record leaves a
// copy that nobody else has (sent again); after it, before or during the
// session, or after the 250 but before "given" is durable, O recovers an
// unconfirmed hand-over and asks HOLD, while M (if it stored the copy)
// asks MINE: either answer decides, once. M crashing before its store
// leaves nothing; after it (before or after its 250) M recovers its held
// copy and asks MINE. M answering HOLD yes and dying: O records "given M",
// M's recovered copy asks MINE and gets yes. A reply lost either way: the
// question is asked again and answered from the record. A network cut:
// O's timeout decides "kept", M's copy waits and is dropped when the cut
// heals. A crash after the decision but during ProcessHere runs
// ProcessHere again on the same node (the ordinary at-least-once of a
// queue step, never a second node).
//
// The trade-off: a taker processes a transfer one question later than it
// stores it (one round trip over the channel and one sync round at the
// origin), a held copy waits while its origin is down (the origin's users
// are down with it), and a message whose taker went down waits
// TransferConfirmTimeout at its origin before the origin processes it.
// A member that lies about its name in a question could take messages
// handed to others; members are trusted with the cluster secret anyway.

// maxTransferTargets: the most members a message is handed to, in turn,
// while each refuses it clearly; then it is processed here.
const maxTransferTargets = 2

// errNoPeers: this node cannot put questions to members.
var errNoPeers = mail.TemporaryError("no cluster channel on this node")

// xferStep is the step of the transfer protocol a queue entry has in
// flight (a goroutine that reports back); it holds an active slot.
type xferStep int

const (
	xferNone       xferStep = iota
	xferSending             // the transfer session to env.HandedTo
	xferAsking              // a question to the other member
	xferProcessing          // Enqueuer.ProcessHere
)

// xferState is what a queue entry's transfer is up to, in memory.
type xferState struct {
	step xferStep
	// decision: (origin) what this node decided, never changed once
	// made; durable once its write succeeded; writing while that write
	// is under way.
	decision storage.TransferOutcome
	durable  bool
	writing  bool
	// waiters are the members' MINE questions answered once the
	// decision is durable.
	waiters []transferWaiter
	// tried: the members this run handed the message to.
	tried map[string]bool
	// asks counts the questions in a row that got no answer (backoff).
	asks int
}

type transferWaiter struct {
	from  string
	reply func(TransferVerdict, error)
}

// Messages of the transfer protocol to the queue actor.
type (
	// xferSent: the transfer session to member ended.
	xferSent struct {
		id, member string
		err        error
	}
	// xferAnswer: member answered a question about id (or err says why
	// not).
	xferAnswer struct {
		id, member string
		kind       TransferQuestionKind
		verdict    TransferVerdict
		err        error
	}
	// xferDecided: the decision about id is durable, or err says why
	// not.
	xferDecided struct {
		id  string
		err error
	}
	// transferAsked: a member's question (the transfers actor, or
	// System.AnswerTransfer); reply is called once.
	transferAsked struct {
		q     TransferQuestion
		reply func(TransferVerdict, error)
	}
	// processed: Enqueuer.ProcessHere ran on a message that waited for
	// a transfer decision. With err nil, msg is what it made of it;
	// discard: a rule dropped it; rejected: a rule refused it.
	processed struct {
		id       string
		msg      *mail.Message
		err      error
		discard  bool
		rejected bool
	}
)

// transferStep runs the next step of a message that waits for a transfer
// decision: one this node generated (env.Transfer) or one a member handed
// over (env.Origin).
func (q *queueActor) transferStep(ctx actor.Context, e *qentry) {
	env, x := e.env(), &e.xfer
	switch {
	case x.decision.Decided():
		switch {
		case x.writing:
			// xferDecided continues
		case !x.durable:
			q.writeDecision(ctx, e) // a write that failed: again
		case x.decision.Kept:
			q.processHere(ctx, e)
		}
	case env.Origin != "":
		q.ask(ctx, e, env.Origin, AskMine)
	case env.HandedTo != "":
		q.ask(ctx, e, env.HandedTo, AskHold)
	default:
		q.send(ctx, e)
	}
}

// send hands e to the next member that takes transfers, recording the
// hand-over durably first; with none left, e is kept and processed here.
func (q *queueActor) send(ctx actor.Context, e *qentry) {
	if !q.takeSlot(e) || !q.loadBody(ctx, e) {
		return
	}
	member := q.nextTarget(e)
	if member == "" {
		q.releaseSlot(ctx, e)
		q.decide(ctx, e, storage.TransferOutcome{Kept: true}, "no member takes transfers now")
		return
	}
	env := e.env()
	if e.xfer.tried == nil {
		e.xfer.tried = map[string]bool{}
	}
	e.xfer.tried[member] = true
	env.HandedTo, env.HandedAt = member, q.now()
	recorded := q.store.Update(env.Clone())
	e.xfer.step = xferSending
	msg := snapshot(e.msg)
	id, root, self := env.ID, ctx.ActorSystem().Root, ctx.Self()
	go func() {
		if err := <-recorded; err != nil {
			// Not sent: a clear failure.
			root.Send(self, &xferSent{id: id, member: member, err: fmt.Errorf("recording the hand-over: %w", err)})
			return
		}
		tctx, cancel := context.WithTimeout(q.base, q.cfg.RelayTimeout)
		defer cancel()
		root.Send(self, &xferSent{id: id, member: member, err: q.transferer.TransferTo(tctx, member, msg)})
	}()
}

// nextTarget is the first live member that takes transfers and has not
// had e in this run, or "" (none, or maxTransferTargets tried).
func (q *queueActor) nextTarget(e *qentry) string {
	if q.transferer == nil || len(e.xfer.tried) >= maxTransferTargets {
		return ""
	}
	for _, m := range q.transferer.Targets() {
		if !e.xfer.tried[m] {
			return m
		}
	}
	return ""
}

func (q *queueActor) sent(ctx actor.Context, m *xferSent) {
	e := q.entries[m.id]
	if e == nil || e.xfer.step != xferSending {
		return
	}
	q.releaseSlot(ctx, e)
	if q.stopping() {
		return // the next start goes on from what is durable
	}
	if e.xfer.decision.Decided() {
		return // the member asked first: decided already
	}
	var u interface{ TransferUnclear() bool }
	switch {
	case m.err == nil:
		q.decide(ctx, e, storage.TransferOutcome{GivenTo: m.member}, "")
	case errors.As(m.err, &u) && u.TransferUnclear():
		q.stats.result("transfer", "unconfirmed")
		q.stats.Journal.Record(m.id, "transfer-unconfirmed", fmt.Sprintf("handed to %s, no reply: %v; asking it", m.member, m.err))
		q.log.Info("transfer unconfirmed: asking the member whether it holds the message", "queueID", m.id, "member", m.member, "err", m.err)
		q.ask(ctx, e, m.member, AskHold)
	case q.nextTarget(e) != "":
		// A clear refusal: the member holds no copy from this attempt
		// (were it to hold one after all, it asks, and this node gives it
		// the message if it has not decided otherwise).
		q.log.Info("transfer refused; trying another member", "queueID", m.id, "member", m.member, "err", m.err)
		e.env().HandedTo = ""
		q.send(ctx, e)
	default:
		q.decide(ctx, e, storage.TransferOutcome{Kept: true}, m.err.Error())
	}
}

// ask puts a question about e to member.
func (q *queueActor) ask(ctx actor.Context, e *qentry, member string, kind TransferQuestionKind) {
	if !q.takeSlot(e) {
		return
	}
	e.xfer.step = xferAsking
	id, root, self := e.env().ID, ctx.ActorSystem().Root, ctx.Self()
	question := TransferQuestion{Kind: kind, ID: id, From: q.cfg.NodeName}
	go func() {
		actx, cancel := context.WithTimeout(q.base, q.cfg.RequestTimeout)
		defer cancel()
		verdict, err := VerdictNo, error(errNoPeers)
		if q.peers != nil {
			verdict, err = q.peers.AskTransfer(actx, member, question)
		}
		root.Send(self, &xferAnswer{id: id, member: member, kind: kind, verdict: verdict, err: err})
	}()
}

func (q *queueActor) answered(ctx actor.Context, m *xferAnswer) {
	e := q.entries[m.id]
	if e == nil || e.xfer.step != xferAsking {
		return
	}
	q.releaseSlot(ctx, e)
	if q.stopping() {
		return // the next start goes on from what is durable
	}
	if e.xfer.decision.Decided() {
		return
	}
	env, now := e.env(), q.now()
	if m.err == nil {
		e.xfer.asks = 0
	}
	switch {
	case m.kind == AskHold && m.err == nil && m.verdict == VerdictYes:
		q.decide(ctx, e, storage.TransferOutcome{GivenTo: m.member}, "")
	case m.kind == AskHold && m.err == nil:
		q.decide(ctx, e, storage.TransferOutcome{Kept: true}, m.member+" holds no copy")
	case m.kind == AskHold && !now.Before(env.HandedAt.Add(q.cfg.TransferConfirmTimeout)):
		q.decide(ctx, e, storage.TransferOutcome{Kept: true},
			fmt.Sprintf("%s has not answered for %v since the hand-over: %v", m.member, q.cfg.TransferConfirmTimeout, m.err))
	case m.kind == AskMine && m.err == nil && m.verdict == VerdictYes:
		q.stats.Journal.Record(m.id, "transfer-confirmed", m.member+" says it is ours")
		q.processHere(ctx, e)
	case m.kind == AskMine && m.err == nil && m.verdict == VerdictNo:
		q.stats.result("transfer", "dropped")
		q.log.Info("dropping a transfer: its origin processes it itself", "queueID", m.id, "origin", m.member)
		q.stats.Journal.Record(m.id, "transfer-dropped", m.member+" processes it itself")
		q.remove(m.id)
	case m.kind == AskMine && m.err == nil && now.Before(env.Received.Add(storage.TransferRetention-24*time.Hour)):
		q.log.Warn("the origin of a transfer has no record of it (its data was lost?): processing it here", "queueID", m.id, "origin", m.member)
		q.stats.Journal.Record(m.id, "transfer-confirmed", m.member+" has no record of it")
		q.processHere(ctx, e)
	case m.kind == AskMine && m.err == nil:
		// The origin's record may have expired: it cannot say whether
		// it processed the message. The administrator decides.
		q.log.Warn("held: the origin of this old transfer no longer remembers it; release it to process it here, or delete it",
			"queueID", m.id, "origin", m.member)
		q.stats.Journal.Record(m.id, "held", m.member+" no longer remembers it")
		env.Held, env.Origin = true, ""
		q.write(m.id, q.store.Update(env.Clone()))
	default:
		// No answer: ask again later (the message is deferred, as a
		// local delivery whose owner does not answer, 4.4.x).
		e.xfer.asks++
		d := min(250*time.Millisecond<<min(e.xfer.asks-1, 10), q.cfg.LocalRetry)
		q.log.Info("transfer question not answered; asking again", "queueID", m.id, "member", m.member, "in", d, "err", m.err)
		e.due = now.Add(d)
		ctx.Send(q.sched, &wake{id: m.id, at: e.due})
	}
}

// decide makes this node's decision about e, which it generated and may
// have handed over: given to a member, or kept. The decision is final;
// it takes effect (and is told to anyone) once it is durable
// (xferDecided).
func (q *queueActor) decide(ctx actor.Context, e *qentry, d storage.TransferOutcome, why string) {
	if e.xfer.decision.Decided() {
		return
	}
	e.xfer.decision = d
	if d.Kept {
		q.log.Info("transfer not confirmed; processing here", "queueID", e.env().ID, "why", why)
		q.stats.Journal.Record(e.env().ID, "transfer-failed", why+"; processed here")
	}
	q.writeDecision(ctx, e)
}

func (q *queueActor) writeDecision(ctx actor.Context, e *qentry) {
	id, d := e.env().ID, e.xfer.decision
	var ch <-chan error
	if d.Kept {
		ch = q.store.KeepTransfer(id)
	} else {
		ch = q.store.GiveTransfer(id, d.GivenTo)
	}
	e.xfer.writing = true
	root, self := ctx.ActorSystem().Root, ctx.Self()
	go func() { root.Send(self, &xferDecided{id: id, err: <-ch}) }()
}

func (q *queueActor) decided(ctx actor.Context, m *xferDecided) {
	e := q.entries[m.id]
	if e == nil || !e.xfer.writing {
		return
	}
	x := &e.xfer
	x.writing = false
	waiters := x.waiters
	x.waiters = nil
	if m.err != nil {
		q.log.Error("recording a transfer decision failed; will retry", "queueID", m.id, "err", m.err)
		for _, w := range waiters {
			w.reply(0, fmt.Errorf("%w: the decision about %s is not recorded yet", mail.ErrUnavailable, m.id))
		}
		e.due = q.now().Add(q.cfg.MinBackoff)
		ctx.Send(q.sched, &wake{id: m.id, at: e.due})
		return
	}
	x.durable = true
	for _, w := range waiters {
		w.reply(verdictFor(x.decision, w.from), nil)
	}
	if x.decision.Kept {
		if !q.stopping() {
			q.processHere(ctx, e)
		}
		return
	}
	q.stats.Journal.Record(m.id, "transferred", "handed to "+x.decision.GivenTo)
	q.mlog.Transferred(m.id, x.decision.GivenTo, q.now().Sub(e.env().Received))
	q.stats.Transferred.Add(1)
	q.stats.result("transfer", "transferred")
	q.log.Info("transferred to a member that processes queues for others", "queueID", m.id, "member", x.decision.GivenTo)
	q.forget(m.id) // GiveTransfer deleted the copy
}

// verdictFor is the answer to member's MINE question under decision d.
func verdictFor(d storage.TransferOutcome, member string) TransferVerdict {
	if d.GivenTo == member {
		return VerdictYes
	}
	return VerdictNo
}

// processHere runs Enqueuer.ProcessHere on e (this node's to process: it
// kept it, or its origin said so) in a goroutine that reports back.
func (q *queueActor) processHere(ctx actor.Context, e *qentry) {
	if !q.takeSlot(e) || !q.loadBody(ctx, e) {
		return
	}
	e.xfer.step = xferProcessing
	msg := snapshot(e.msg)
	root, self := ctx.ActorSystem().Root, ctx.Self()
	go func() {
		tctx, cancel := context.WithTimeout(q.base, q.cfg.RelayTimeout)
		defer cancel()
		// Processed here: this queue takes it, so its rules run here
		// (once), then it is routed and stored as processed.
		discard, err := q.enq.ProcessHere(tctx, msg)
		p := &processed{id: msg.Envelope.ID, msg: msg, err: err, discard: discard}
		if err != nil {
			p.msg, p.rejected = nil, mail.AsError(err) != nil
		}
		root.Send(self, p)
	}()
}

func (q *queueActor) processedHere(ctx actor.Context, m *processed) {
	e := q.entries[m.id]
	if e == nil || e.xfer.step != xferProcessing {
		return
	}
	q.releaseSlot(ctx, e)
	if q.stopping() {
		return // the next start goes on from what is durable
	}
	switch {
	case m.discard:
		q.log.Info("processed here and discarded by a rule", "queueID", m.id)
		q.remove(m.id)
	case m.rejected:
		// Refused here by a rule: fail every recipient and report it to
		// the sender, as a delivery failure.
		q.log.Info("refused here by a rule", "queueID", m.id, "err", m.err)
		var rej *mail.Error
		errors.As(m.err, &rej)
		res := rej.Result()
		now := q.now()
		env := e.env()
		for _, r := range env.Recipients {
			if !r.State.Final() {
				r.State, r.Done, r.Status, r.LastError, r.NextAttempt = mail.StateFailed, now, res.Status.Permanent(), res.String(), time.Time{}
				q.stats.failed(r, "transfer")
				q.mlog.Delivery(maillog.Delivery{QueueID: env.ID, To: r.Addr, Relay: q.cfg.NodeName + " (rules)",
					Delay: now.Sub(env.Received), DSN: r.Status, Status: maillog.StatusBounced, Reason: r.LastError})
			}
		}
		env.Transfer, env.Origin, env.HandedTo, env.HandedAt = false, "", "", time.Time{}
		q.finish(ctx, e)
	case m.err == nil:
		if e.env().Origin != "" {
			q.stats.result("transfer", "taken")
		} else {
			q.stats.result("transfer", "fallback")
		}
		e.msg = m.msg
		q.attempt(ctx, e)
	default:
		q.stats.result("transfer", "retry")
		q.log.Warn("the message cannot be routed here yet; retrying", "queueID", m.id, "err", m.err)
		e.due = q.now().Add(q.cfg.LocalRetry)
		ctx.Send(q.sched, &wake{id: m.id, at: e.due})
	}
}

// asked answers a member's question about a transfer.
func (q *queueActor) asked(ctx actor.Context, m *transferAsked) {
	id, from := m.q.ID, m.q.From
	e := q.entries[id]
	switch m.q.Kind {
	case AskHold:
		// Do I hold a copy from you? A held copy goes on only with the
		// asker's yes, so the answer needs no record here.
		if e != nil && e.env().Origin == from {
			m.reply(VerdictYes, nil)
		} else {
			m.reply(VerdictNo, nil)
		}
		return
	case AskMine:
	default:
		m.reply(0, fmt.Errorf("%w: unknown transfer question %d", mail.ErrInvalid, m.q.Kind))
		return
	}
	// Is the copy you hold mine? This node decides.
	if e != nil && e.xfer.decision.Decided() {
		if e.xfer.durable {
			m.reply(verdictFor(e.xfer.decision, from), nil)
		} else {
			e.xfer.waiters = append(e.xfer.waiters, transferWaiter{from: from, reply: m.reply})
		}
		return
	}
	if e != nil && (e.env().Transfer || e.env().Damaged != "") {
		// Undecided: the asker holds a copy (it asks), so it gets it. (A
		// copy here held as damaged is given away too: the asker's is
		// intact.)
		q.stats.Journal.Record(id, "transfer-confirmed", from+" holds it")
		e.xfer.waiters = append(e.xfer.waiters, transferWaiter{from: from, reply: m.reply})
		q.decide(ctx, e, storage.TransferOutcome{GivenTo: from}, "")
		return
	}
	d, err := q.store.TransferOutcome(id)
	switch {
	case err != nil:
		m.reply(0, fmt.Errorf("%w: reading the transfer record of %s: %v", mail.ErrUnavailable, id, err))
	case d.Decided():
		m.reply(verdictFor(d, from), nil)
	default:
		m.reply(VerdictUnknown, nil)
	}
}

// recoverTransfer reads the decision recorded for a message this node
// generated, after a restart: true when e is still in the queue.
func (q *queueActor) recoverTransfer(e *qentry) bool {
	env := e.env()
	d, err := q.store.TransferOutcome(env.ID)
	switch {
	case err != nil:
		// Whether it was given away cannot be told: never processed
		// here, held for the administrator.
		q.damaged(e, fmt.Errorf("the record of its transfer: %w", err))
	case d.GivenTo != "":
		q.forget(env.ID) // GiveTransfer deletes the copy in the same batch
		q.write(env.ID, q.store.Delete(env.ID))
		return false
	case d.Kept:
		e.xfer.decision, e.xfer.durable = d, true
	}
	return true
}

// stopping reports whether the node is shutting down: the outcome of a
// step cut short by that (a cancelled session or question) decides
// nothing; the next start goes on from what is durable.
func (q *queueActor) stopping() bool { return q.base.Err() != nil }

// releaseSlot ends e's transfer step and gives its active slot back.
func (q *queueActor) releaseSlot(ctx actor.Context, e *qentry) {
	if e.xfer.step != xferNone {
		e.xfer.step = xferNone
	}
	if !e.busy() {
		q.active--
	}
	q.pump(ctx)
}
