package actors

import (
	"errors"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// Placement tells where the actor of each account partition lives. On a
// single node every partition is local; in a cluster the placement follows
// membership. PartitionPID returns an error wrapping mail.ErrUnavailable
// when the partition has no owner right now (handoff, no backend alive).
type Placement interface {
	PartitionPID(partition int) (*actor.PID, error)
}

// localDeliveryActor is Local Delivery: it sends each attempt's local
// recipients, one pb.Deliver per account, to the actor of the account's
// partition, wherever it runs, and reports the answers to the queue. The
// backend stores the message at once; nothing is queued there. No answer
// within RequestTimeout is a temporary failure, and a retry is safe
// because the append is idempotent.
//
// At most perAccountWindow deliveries to one account are in flight; the
// rest wait here in order. An account actor stores one message at a time,
// so a burst for one account (a mailing list, a load test) would otherwise
// wait in its mailbox until the requests time out.
type localDeliveryActor struct {
	cfg   *Config
	place Placement
	stats *Stats

	accounts map[string]*accountWindow
}

// perAccountWindow is how many deliveries to one account may be in flight.
const perAccountWindow = 4

type accountWindow struct {
	inflight int
	waiting  []*deliveryTask
}

// deliveryTask is the part of one attempt for one account.
type deliveryTask struct {
	job     *jobState
	account string
	msg     *mail.Message // the attempt for this account's recipients
}

// jobState collects the answers of one attempt.
type jobState struct {
	id      string
	queue   *actor.PID
	results []mail.Result
	left    int // tasks without an answer
}

func (l *localDeliveryActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		l.stats.started(KindLocalDelivery)
		l.accounts = map[string]*accountWindow{}
	case *actor.Stopped:
		l.stats.stopped(KindLocalDelivery)
	case *mail.Message:
		queue := ctx.Sender()
		if queue == nil {
			queue = ctx.Parent()
		}
		if storage.IsFileBody(m.Body) {
			// A body in a file goes by reference, and a mailbox on this
			// filesystem links it without reading it: read it once here
			// (off the actor), so that a damaged one is held in the queue
			// rather than stored.
			root, self := ctx.ActorSystem().Root, ctx.Self()
			go func() { root.Send(self, &verified{msg: m, queue: queue, err: storage.VerifyBody(m.Body)}) }()
			return
		}
		l.start(ctx, m, queue)
	case *verified:
		if m.err != nil {
			res := mail.Temp(mail.StatusLocalError, "message body unavailable")
			if errors.Is(m.err, storage.ErrDamaged) {
				res.Damaged = m.err.Error()
			}
			results := make([]mail.Result, 0, len(m.msg.Envelope.Recipients))
			for _, r := range m.msg.Envelope.Recipients {
				res.Rcpt = r.Key
				results = append(results, res)
			}
			ctx.Send(m.queue, &attemptDone{id: m.msg.Envelope.ID, results: results})
			return
		}
		l.start(ctx, m.msg, m.queue)
	}
}

// verified: a body in a file was read and checked (err wraps
// storage.ErrDamaged when it does not match).
type verified struct {
	msg   *mail.Message
	queue *actor.PID
	err   error
}

// start delivers the attempt m, one task per account.
func (l *localDeliveryActor) start(ctx actor.Context, m *mail.Message, queue *actor.PID) {
	var accounts []string
	byAccount := map[string][]int{}
	for _, r := range m.Envelope.Recipients {
		if byAccount[r.Account] == nil {
			accounts = append(accounts, r.Account)
		}
		byAccount[r.Account] = append(byAccount[r.Account], r.Key)
	}
	js := &jobState{id: m.Envelope.ID, queue: queue, left: len(accounts),
		results: make([]mail.Result, 0, len(m.Envelope.Recipients))}
	for _, a := range accounts {
		l.enqueue(ctx, &deliveryTask{job: js, account: a, msg: m.For(byAccount[a]...)})
	}
}

func (l *localDeliveryActor) enqueue(ctx actor.Context, t *deliveryTask) {
	w := l.accounts[t.account]
	if w == nil {
		w = &accountWindow{}
		l.accounts[t.account] = w
	}
	if w.inflight >= perAccountWindow {
		w.waiting = append(w.waiting, t)
		return
	}
	w.inflight++
	l.deliver(ctx, t)
}

// finished records the answers of one task and starts the account's next
// waiting task.
func (l *localDeliveryActor) finished(ctx actor.Context, t *deliveryTask, results []mail.Result) {
	js := t.job
	js.results = append(js.results, results...)
	js.left--
	if js.left == 0 {
		ctx.Send(js.queue, &attemptDone{id: js.id, results: js.results})
	}
	w := l.accounts[t.account]
	if w == nil {
		return
	}
	w.inflight--
	if len(w.waiting) > 0 {
		next := w.waiting[0]
		w.waiting[0] = nil
		w.waiting = w.waiting[1:]
		w.inflight++
		l.deliver(ctx, next)
		return
	}
	if w.inflight == 0 {
		delete(l.accounts, t.account)
	}
}

// all is res for every recipient of t.
func (t *deliveryTask) all(res mail.Result) []mail.Result {
	out := make([]mail.Result, 0, len(t.msg.Envelope.Recipients))
	for _, r := range t.msg.Envelope.Recipients {
		res.Rcpt = r.Key
		out = append(out, res)
	}
	return out
}

func (l *localDeliveryActor) deliver(ctx actor.Context, t *deliveryTask) {
	pid, err := l.place.PartitionPID(mail.PartitionOf(t.account, l.cfg.Partitions))
	if err != nil {
		l.finished(ctx, t, t.all(mail.Temp(mail.StatusDirectoryFailure, "mailbox server temporarily unavailable")))
		return
	}
	d, err := pbDeliver(t.msg, ctx.ActorSystem().Address())
	if err != nil {
		l.finished(ctx, t, t.all(mail.Temp(mail.StatusLocalError, "message body unavailable")))
		return
	}
	f := ctx.RequestFuture(pid, d, l.cfg.RequestTimeout)
	ctx.ReenterAfter(f, func(res interface{}, err error) {
		dr, ok := res.(*pb.DeliverResult)
		if err != nil || !ok {
			// Timeout or the owner went away: the message may or may
			// not be stored. Retrying is safe (idempotent).
			l.finished(ctx, t, t.all(mail.Temp(mail.StatusNoAnswer, "no answer from the mailbox server")))
			return
		}
		l.finished(ctx, t, mailResults(dr, t.msg.Envelope.Recipients))
	})
}
