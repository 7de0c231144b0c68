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
type localDeliveryActor struct {
	cfg   *Config
	place Placement
	stats *Stats
	now   func() time.Time
}

func (l *localDeliveryActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		l.stats.started(KindLocalDelivery)
	case *actor.Stopped:
		l.stats.stopped(KindLocalDelivery)
	case *localJob:
		l.deliver(ctx, m)
	}
}

func (l *localDeliveryActor) deliver(ctx actor.Context, job *localJob) {
	queue := ctx.Sender()
	if queue == nil {
		queue = ctx.Parent()
	}
	done := &attemptDone{id: job.id, outcomes: make([]outcome, 0, len(job.rcpts))}
	left := len(job.rcpts)
	record := func(idx int, res mail.Result) {
		done.outcomes = append(done.outcomes, outcome{idx: idx, res: res, at: l.now()})
		left--
		if left == 0 {
			ctx.Send(queue, done)
		}
	}
	for _, r := range job.rcpts {
		pid, err := l.place.PartitionPID(mail.PartitionOf(r.account, l.cfg.Partitions))
		if err != nil {
			record(r.idx, mail.Temp("4.4.3", "mailbox server temporarily unavailable"))
			continue
		}
		f := ctx.RequestFuture(pid, &pb.Deliver{
			QueueId:          job.id,
			Recipient:        r.addr,
			Account:          r.account,
			Raw:              job.body,
			ReceivedUnixNano: job.received.UnixNano(),
			Sender:           job.from,
		}, l.cfg.RequestTimeout)
		idx := r.idx
		ctx.ReenterAfter(f, func(res interface{}, err error) {
			dr, ok := res.(*pb.DeliverResult)
			if err != nil || !ok {
				// Timeout or the owner went away: the message may or
				// may not be stored. Retrying is safe (idempotent).
				record(idx, mail.Temp("4.4.1", "no answer from the mailbox server"))
				return
			}
			record(idx, mailResult(dr.Result))
		})
	}
}
