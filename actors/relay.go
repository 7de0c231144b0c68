package actors

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// relayJob is one attempt waiting in a relay actor, with the queue that
// asked for it.
type relayJob struct {
	msg   *mail.Message
	queue *actor.PID
}

// relayFinished: one transaction of a relay actor ended.
type relayFinished struct{}

// relayActor sends the remote recipients of one destination domain, at most
// RelayConcurrency transactions at a time, and reports the answers to the
// queue. Each attempt (a *mail.Message whose recipients are all in the
// domain) is one SMTP transaction, run in a goroutine, so the actor never
// waits on the network.
type relayActor struct {
	domain  string
	cfg     *Config
	relayer Relayer
	stats   *Stats
	// base is the node's lifetime: cancelled at shutdown so that
	// transactions in progress end. (Actors get no context from
	// protoactor, hence the field.)
	base context.Context

	running  int
	pending  []relayJob
	received int // jobs received in all (see relayIdle)
}

func (r *relayActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.stats.started(KindRelay)
		ctx.SetReceiveTimeout(r.cfg.RelayIdle)
	case *actor.Stopped:
		r.stats.stopped(KindRelay)
	case *mail.Message:
		r.received++
		r.pending = append(r.pending, relayJob{msg: m, queue: ctx.Parent()})
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
		r.pending[0] = relayJob{}
		r.pending = r.pending[1:]
		r.running++
		root, self := ctx.ActorSystem().Root, ctx.Self()
		go func() {
			tctx, cancel := context.WithTimeout(r.base, r.cfg.RelayTimeout)
			// The relayer streams the body; a body in a file is checked as
			// it is read, and a damaged one fails the read at its end, so
			// the DATA is aborted without its final dot. watched says so.
			msg, body := *job.msg, &watchedBody{Body: job.msg.Body}
			msg.Body = body
			results := answered(job.msg, r.relayer.Send(tctx, &msg))
			cancel()
			if err := body.damage(); err != nil {
				for i := range results {
					results[i].Damaged = err.Error()
				}
			}
			root.Send(job.queue, &attemptDone{id: job.msg.Envelope.ID, results: results})
			root.Send(self, &relayFinished{})
		}()
	}
}

// answered returns one result per recipient of the attempt msg: the one in
// results naming it, or a temporary failure where the relayer gave none.
func answered(msg *mail.Message, results []mail.Result) []mail.Result {
	byKey := make(map[int]mail.Result, len(results))
	for _, res := range results {
		byKey[res.Rcpt] = res
	}
	out := make([]mail.Result, 0, len(msg.Envelope.Recipients))
	for _, rc := range msg.Envelope.Recipients {
		res, ok := byKey[rc.Key]
		if !ok {
			res = mail.Temp(mail.StatusConnectionLost, "no result from relay")
			res.Rcpt = rc.Key
		}
		out = append(out, res)
	}
	return out
}

// watchedBody is a Body that remembers the first error one of its readers
// returned that says the stored bytes are damaged (storage.ErrDamaged).
type watchedBody struct {
	mail.Body
	mu  sync.Mutex
	err error
}

func (b *watchedBody) note(err error) {
	if err == nil || !errors.Is(err, storage.ErrDamaged) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
}

// damage is the damage a reader found, nil when none did.
func (b *watchedBody) damage() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *watchedBody) Open() (io.ReadCloser, error) {
	r, err := b.Body.Open()
	if err != nil {
		b.note(err)
		return nil, err
	}
	return &watchedReader{ReadCloser: r, b: b}, nil
}

type watchedReader struct {
	io.ReadCloser
	b *watchedBody
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		r.b.note(err)
	}
	return n, err
}
