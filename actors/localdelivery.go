package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
)

// Placement tells where the actor of each account partition lives. On a
// single node every partition is local; in a cluster the placement follows
// membership. PartitionPID returns an error wrapping mail.ErrUnavailable
// when the partition has no owner right now (handoff, no backend alive).
type Placement interface {
	PartitionPID(partition int) (*actor.PID, error)
}

// OwnerWatcher is the optional part of a Placement that says when a
// partition's owner changes (*cluster.Placement has it). A request in
// flight to an owner that is replaced is sent again to the new one at
// once (deliveries are idempotent) rather than waiting for its timeout:
// after a kill -9 the old owner never answers.
type OwnerWatcher interface {
	OwnerChanged(partition int) <-chan struct{}
}

// ownerChanged returns place's channel for partition p, or nil (never
// ready) when place cannot tell.
func ownerChanged(place Placement, p int) <-chan struct{} {
	if w, ok := place.(OwnerWatcher); ok {
		return w.OwnerChanged(p)
	}
	return nil
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
// The account actor writes each without waiting for the sync of the one
// before (AppendAsync), so the window is how many share a sync round: at
// 4, one account took four messages per sync latency (53/s on a loaded
// machine while 133/s came in, homing-load --accounts 1); at 32 it
// keeps up.
const perAccountWindow = 32

type accountWindow struct {
	inflight int
	waiting  []*deliveryTask
}

// deliveryTask is the part of one attempt for one account.
type deliveryTask struct {
	job     *jobState
	account string
	msg     *mail.Message // the attempt for this account's recipients
	// try counts the Delivers sent for this task (one more each time the
	// owner changed while one was in flight); done is set once it is
	// answered, and stop ends the watch of the owner.
	try     int
	done    bool
	stop    chan struct{}
	sent    int // Delivers sent because the owner changed
	retries int // of those, sent again because the new owner did not answer
}

// ownerMoved: the owner of a task's partition changed while its Deliver
// was in flight.
type ownerMoved struct {
	task  *deliveryTask
	try   int
	again bool // a retry at the new owner, not a new move
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
		// A body in a file is not read here: whoever stores it reads it
		// once and checks its length and CRC-32C on the way (the append
		// that links it as it computes its summary, a copy or a fetch
		// over the channel), and a damaged one comes back with Damaged
		// set, so the queue holds it rather than anything storing it.
		l.start(ctx, m, queue)
	case *ownerMoved:
		l.moved(ctx, m)
	}
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
	t.done = true
	if t.stop != nil {
		close(t.stop)
		t.stop = nil
	}
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
	t.try++
	try := t.try
	if changed := ownerChanged(l.place, mail.PartitionOf(t.account, l.cfg.Partitions)); changed != nil && t.sent < maxOwnerMoves {
		if t.stop == nil {
			t.stop = make(chan struct{})
		}
		root, self, stop := ctx.ActorSystem().Root, ctx.Self(), t.stop
		go func() {
			select {
			case <-changed:
				root.Send(self, &ownerMoved{task: t, try: try})
			case <-stop:
			}
		}()
	}
	f := ctx.RequestFuture(pid, d, l.cfg.RequestTimeout)
	ctx.ReenterAfter(f, func(res interface{}, err error) {
		if t.done || t.try != try {
			return // answered already, or sent again to a new owner
		}
		dr, ok := res.(*pb.DeliverResult)
		if (err != nil || !ok) && t.sent > 0 && t.retries < maxMovedRetries {
			// Sent to a new owner that does not run the partition yet
			// (its view lags): again shortly (100 ms doubling).
			root, self := ctx.ActorSystem().Root, ctx.Self()
			time.AfterFunc(100*time.Millisecond<<t.retries, func() { root.Send(self, &ownerMoved{task: t, try: try, again: true}) })
			t.retries++
			return
		}
		if err != nil || !ok {
			// Timeout or the owner went away: the message may or may
			// not be stored. Retrying is safe (idempotent).
			l.finished(ctx, t, t.all(mail.Temp(mail.StatusNoAnswer, "no answer from the mailbox server")))
			return
		}
		l.finished(ctx, t, mailResults(dr, t.msg.Envelope.Recipients))
	})
}

// maxOwnerMoves bounds how often one task follows its partition to a new
// owner.
const maxOwnerMoves = 3

// maxMovedRetries bounds the retries at a new owner that did not answer
// (100 ms doubling: 3.1 s in all).
const maxMovedRetries = 5

// moved sends a task whose Deliver is in flight to its partition's new
// owner (idempotent at the mailbox: dedup on queue id and recipient).
func (l *localDeliveryActor) moved(ctx actor.Context, m *ownerMoved) {
	t := m.task
	if t.done || t.try != m.try {
		return
	}
	if !m.again {
		t.sent++
	}
	l.deliver(ctx, t)
}
