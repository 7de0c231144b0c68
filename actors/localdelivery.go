package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
)

// localJob asks the local delivery actor to deliver one queued message to
// some of its local recipients.
type localJob struct {
	id       string
	from     string
	received time.Time
	body     []byte
	rcpts    []localRcpt
}

type localRcpt struct {
	idx     int
	addr    string
	account string
}

// Placement tells where the actor of each account partition lives. On a
// single node every partition is local; in a cluster the placement follows
// membership. PartitionPID returns an error wrapping ErrUnavailable when
// the partition has no owner right now (handoff, no backend alive).
type Placement interface {
	PartitionPID(partition int) (*actor.PID, error)
}

// localDeliveryActor is Local Delivery: it sends each local recipient of a
// queued message to the actor of the account's partition, wherever it
// runs, and reports the outcomes to the queue. The backend stores the
// message at once; nothing is queued there. No answer within
// RequestTimeout is a temporary failure, and a retry is safe because the
// append is idempotent.
//
// At most perAccountWindow deliveries to one account are in flight; the
// rest wait here in order. An account actor stores one message at a time,
// so a burst for one account (a mailing list, a load test) would otherwise
// wait in its mailbox until the requests time out.
type localDeliveryActor struct {
	cfg   *Config
	place Placement
	stats *Stats
	now   func() time.Time

	accounts map[string]*accountWindow
}

// perAccountWindow is how many deliveries to one account may be in flight.
const perAccountWindow = 4

type accountWindow struct {
	inflight int
	waiting  []*deliveryTask
}

// deliveryTask is one recipient of one local job.
type deliveryTask struct {
	job  *jobState
	rcpt localRcpt
}

// jobState collects the outcomes of one localJob.
type jobState struct {
	job   *localJob
	queue *actor.PID
	done  *attemptDone
	left  int
}

func (l *localDeliveryActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		l.stats.started(KindLocalDelivery)
		l.accounts = map[string]*accountWindow{}
	case *actor.Stopped:
		l.stats.stopped(KindLocalDelivery)
	case *localJob:
		queue := ctx.Sender()
		if queue == nil {
			queue = ctx.Parent()
		}
		js := &jobState{job: m, queue: queue, left: len(m.rcpts),
			done: &attemptDone{id: m.id, outcomes: make([]outcome, 0, len(m.rcpts))}}
		for _, r := range m.rcpts {
			l.enqueue(ctx, &deliveryTask{job: js, rcpt: r})
		}
	}
}

func (l *localDeliveryActor) enqueue(ctx actor.Context, t *deliveryTask) {
	w := l.accounts[t.rcpt.account]
	if w == nil {
		w = &accountWindow{}
		l.accounts[t.rcpt.account] = w
	}
	if w.inflight >= perAccountWindow {
		w.waiting = append(w.waiting, t)
		return
	}
	w.inflight++
	l.deliver(ctx, t)
}

// finished records one outcome and starts the account's next waiting task.
func (l *localDeliveryActor) finished(ctx actor.Context, t *deliveryTask, res mail.Result) {
	js := t.job
	js.done.outcomes = append(js.done.outcomes, outcome{idx: t.rcpt.idx, res: res, at: l.now()})
	js.left--
	if js.left == 0 {
		ctx.Send(js.queue, js.done)
	}
	w := l.accounts[t.rcpt.account]
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
		delete(l.accounts, t.rcpt.account)
	}
}

func (l *localDeliveryActor) deliver(ctx actor.Context, t *deliveryTask) {
	job, r := t.job.job, t.rcpt
	pid, err := l.place.PartitionPID(mail.PartitionOf(r.account, l.cfg.Partitions))
	if err != nil {
		l.finished(ctx, t, mail.Temp("4.4.3", "mailbox server temporarily unavailable"))
		return
	}
	f := ctx.RequestFuture(pid, &pb.Deliver{
		QueueId:          job.id,
		Recipient:        r.addr,
		Account:          r.account,
		Raw:              job.body,
		ReceivedUnixNano: job.received.UnixNano(),
		Sender:           job.from,
	}, l.cfg.RequestTimeout)
	ctx.ReenterAfter(f, func(res interface{}, err error) {
		dr, ok := res.(*pb.DeliverResult)
		if err != nil || !ok {
			// Timeout or the owner went away: the message may or may
			// not be stored. Retrying is safe (idempotent).
			l.finished(ctx, t, mail.Temp("4.4.1", "no answer from the mailbox server"))
			return
		}
		l.finished(ctx, t, mailResult(dr.Result))
	})
}
