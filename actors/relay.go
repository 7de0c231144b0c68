package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
)

// relayJob asks a relay actor to send one message to some of its recipients,
// all in the actor's domain, in one SMTP transaction.
type relayJob struct {
	id    string
	env   *mail.Envelope
	body  []byte
	idxs  []int
	rcpts []*mail.Recipient
	queue *actor.PID
}

// relayFinished: one transaction of a relay actor ended.
type relayFinished struct{}

// relayActor sends the remote recipients of one destination domain, at most
// RelayConcurrency transactions at a time, and reports outcomes to the
// queue. The SMTP conversation runs in a goroutine per transaction, so the
// actor never waits on the network.
type relayActor struct {
	domain  string
	cfg     *Config
	relayer Relayer
	stats   *Stats
	// base is the node's lifetime: cancelled at shutdown so that
	// transactions in progress end. (Actors get no context from
	// protoactor, hence the field.)
	base context.Context
	now  func() time.Time

	running  int
	pending  []*relayJob
	received int // jobs received in all (see relayIdle)
}

func (r *relayActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.stats.started(KindRelay)
		ctx.SetReceiveTimeout(r.cfg.RelayIdle)
	case *actor.Stopped:
		r.stats.stopped(KindRelay)
	case *relayJob:
		r.received++
		m.queue = ctx.Parent()
		r.pending = append(r.pending, m)
		r.pump(ctx)
	case *relayFinished:
		r.running--
		r.pump(ctx)
	case *actor.ReceiveTimeout:
		if r.running == 0 && len(r.pending) == 0 {
			ctx.Send(ctx.Parent(), &relayIdle{domain: r.domain, pid: ctx.Self(), jobs: r.received})
		}
	}
}

func (r *relayActor) pump(ctx actor.Context) {
	for r.running < r.cfg.RelayConcurrency && len(r.pending) > 0 {
		job := r.pending[0]
		r.pending = r.pending[1:]
		r.running++
		root, self := ctx.ActorSystem().Root, ctx.Self()
		go func() {
			tctx, cancel := context.WithTimeout(r.base, r.cfg.RelayTimeout)
			results := r.relayer.Send(tctx, job.env, job.rcpts, job.body)
			cancel()
			now := r.now()
			done := &attemptDone{id: job.id}
			for i, idx := range job.idxs {
				res := mail.Temp("4.4.2", "no result from relay")
				if i < len(results) {
					res = results[i]
				}
				done.outcomes = append(done.outcomes, outcome{idx: idx, res: res, at: now})
			}
			root.Send(job.queue, done)
			root.Send(self, &relayFinished{})
		}()
	}
}
