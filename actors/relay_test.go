package actors

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/tlog"
	"github.com/homing-mail/homing/testkit/wait"
)

// All recipients of one message in one domain go in one transaction, each
// result lands on its own recipient, and a retry carries only the
// recipients still open.
func TestRelayOneTransactionPerDomain(t *testing.T) {
	relayer := actorstest.NewRelayer()
	var greylisted atomic.Bool
	relayer.Answer(func(r *mail.Recipient, _ int) mail.Result {
		if r.Addr == "x2@one.example" && greylisted.CompareAndSwap(false, true) {
			return mail.Result{Code: 451, Status: "4.7.1", Text: "greylisted", RemoteMTA: "mx.one.example"}
		}
		return mail.Result{Code: 250, Status: mail.StatusOK, Text: "ok", RemoteMTA: "mx." + mail.Domain(r.Addr)}
	})
	queue := actorstest.NewQueue()
	s := startSystem(t, testConfig(), Deps{Queue: queue, Relayer: relayer})
	body := testBody("grouped")

	id := enqueue(t, s, newEnvelope("bob@remote.example",
		"x1@one.example", "y@two.example", "x2@one.example", "x3@one.example"), body)
	queue.WaitDeleted(t, id)

	one, two := relayer.CallsTo("one.example"), relayer.CallsTo("two.example")
	if len(one) != 2 || len(two) != 1 {
		t.Fatalf("%d calls to one.example, %d to two.example; want 2 (attempt, retry) and 1", len(one), len(two))
	}
	if want := []string{"x1@one.example", "x2@one.example", "x3@one.example"}; !slices.Equal(one[0].Rcpts, want) {
		t.Errorf("first transaction to one.example for %v, want %v", one[0].Rcpts, want)
	}
	if want := []string{"y@two.example"}; !slices.Equal(two[0].Rcpts, want) {
		t.Errorf("transaction to two.example for %v, want %v", two[0].Rcpts, want)
	}
	if want := []string{"x2@one.example"}; !slices.Equal(one[1].Rcpts, want) {
		t.Errorf("retry for %v, want only the deferred %v", one[1].Rcpts, want)
	}
	if want := []int{1, 3, 4}; !slices.Equal(one[0].Keys, want) {
		t.Errorf("first transaction to one.example for keys %v, want %v", one[0].Keys, want)
	}
	if want := []int{3}; !slices.Equal(one[1].Keys, want) {
		t.Errorf("retry for keys %v, want only the deferred %v", one[1].Keys, want)
	}
	if one[0].Env.ID != id || one[0].Env.From != "bob@remote.example" || string(one[0].Body) != string(body) {
		t.Errorf("relayed envelope %s from %q with body %q; want %s from bob@remote.example and the queued body",
			one[0].Env.ID, one[0].Env.From, one[0].Body, id)
	}

	// The first update with every recipient attempted is the record of the
	// first attempt (a relayed recipient may be recorded earlier, on its
	// own, while the other domain's transaction still runs).
	ups := slices.DeleteFunc(queue.Updates(id), func(env *mail.Envelope) bool {
		return slices.ContainsFunc(env.Recipients, func(r *mail.Recipient) bool { return r.State == mail.StatePending })
	})
	if len(ups) == 0 {
		t.Fatal("no update after the first attempt")
	}
	want := map[string]mail.RcptState{
		"x1@one.example": mail.StateDelivered, "y@two.example": mail.StateDelivered,
		"x2@one.example": mail.StateDeferred, "x3@one.example": mail.StateDelivered,
	}
	for _, r := range ups[0].Recipients {
		if r.State != want[r.Addr] {
			t.Errorf("after the first attempt %s is %s, want %s", r.Addr, r.State, want[r.Addr])
		}
		if r.Addr == "x2@one.example" && (r.Status != "4.7.1" || r.LastError != "451 4.7.1 greylisted") {
			t.Errorf("x2: status %q, last error %q; want the relay's 451 4.7.1 greylisted", r.Status, r.LastError)
		}
		if r.State == mail.StateDelivered && r.RemoteMTA != "mx."+mail.Domain(r.Addr) {
			t.Errorf("%s: remote MTA %q", r.Addr, r.RemoteMTA)
		}
	}
}

// At most RelayConcurrency transactions run to one domain; another domain
// is not held up by a busy one.
func TestRelayConcurrencyPerDomain(t *testing.T) {
	relayer := actorstest.NewRelayer()
	queue := actorstest.NewQueue()
	cfg := testConfig()
	cfg.RelayConcurrency = 2
	s := startSystem(t, cfg, Deps{Queue: queue, Relayer: relayer})
	slow := relayer.Block("slow.example")

	var ids []string
	for range 5 {
		ids = append(ids, enqueue(t, s, newEnvelope("bob@remote.example", "u@slow.example"), testBody("slow")))
	}
	wait.For(t, waitTimeout, func() bool { return relayer.InflightTo("slow.example") >= 2 }, "two transactions to slow.example")
	// The queue has handled every message (and handed each to the relay
	// actor) once it answers this.
	if _, err := s.Queue(testCtx(t)); err != nil {
		t.Fatal(err)
	}

	fast := enqueue(t, s, newEnvelope("bob@remote.example", "u@fast.example"), testBody("fast"))
	queue.WaitDeleted(t, fast)
	if n := len(relayer.CallsTo("slow.example")); n != 2 {
		t.Errorf("%d transactions to slow.example started while 2 were blocked, want 2 (the limit)", n)
	}

	for i := range ids {
		actorstest.Release(t, slow, fmt.Sprintf("slow.example transaction %d", i+1))
	}
	for _, id := range ids {
		queue.WaitDeleted(t, id)
	}
	if got := relayer.MaxInflightTo("slow.example"); got != 2 {
		t.Errorf("at most %d transactions to slow.example at once, want 2", got)
	}
	if got := len(relayer.CallsTo("slow.example")); got != 5 {
		t.Errorf("%d transactions to slow.example, want 5", got)
	}
}

// startQueueActor spawns a queue actor wired as Start wires it, with
// receiver middleware on it, for tests that must decide the order in which
// it sees its messages. It has no local domains.
func startQueueActor(t *testing.T, cfg Config, deps Deps, mw ...actor.ReceiverMiddleware) (*Enqueuer, *actor.RootContext, *actor.PID) {
	t.Helper()
	cfg = cfg.WithDefaults()
	log := tlog.New(t, "actors")
	system := newActorSystem(log)
	root := system.Root
	base, cancel := context.WithCancel(context.Background())
	stats := NewStats(nil)
	dir := &Directory{domains: map[string]bool{}, parts: cfg.Partitions, place: deps.Placement, root: root, timeout: cfg.RequestTimeout}
	qpid := system.NewLocalPID("queue")
	enq := &Enqueuer{store: deps.Queue, dir: dir, root: root, queue: qpid, now: time.Now}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &queueActor{cfg: &cfg, store: deps.Queue, relayer: deps.Relayer, enq: enq,
			place: deps.Placement, stats: stats, log: log, now: time.Now, base: base}
	}, actor.WithReceiverMiddleware(mw...))
	if _, err := root.SpawnNamed(props, "queue"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = root.PoisonFuture(qpid).Wait()
		system.Shutdown()
	})
	waitRecovered(t, root, qpid)
	return enq, root, qpid
}

// An idle relay actor reports itself idle and the queue retires it. If
// the queue has meanwhile handed it new jobs (the report was already in the
// queue's mailbox), those jobs must still be sent: none may be dropped with
// the retired actor.
func TestRetiredRelayActorDropsNoJobs(t *testing.T) {
	relayer := actorstest.NewRelayer()
	queue := actorstest.NewQueue()
	cfg := testConfig()
	cfg.RelayIdle = 20 * time.Millisecond
	cfg.RelayConcurrency = 1

	// Hold back the first idle report of a relay actor.
	held := make(chan *relayIdle, 1)
	var holding atomic.Bool
	hold := func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if m, ok := env.Message.(*relayIdle); ok && holding.CompareAndSwap(false, true) {
				held <- m
				return
			}
			next(c, env)
		}
	}
	enq, root, qpid := startQueueActor(t, cfg, Deps{Queue: queue, Relayer: relayer}, hold)

	first := enqueueTo(t, enq, newEnvelope("bob@remote.example", "u@far.example"), testBody("first"))
	queue.WaitDeleted(t, first)
	idle := receive(t, held, "the relay actor for far.example reports idle")

	gate := relayer.Block("far.example")
	var ids []string
	for range 3 {
		ids = append(ids, enqueueTo(t, enq, newEnvelope("bob@remote.example", "u@far.example"), testBody("later")))
	}
	// The idle report reaches the queue after these three messages.
	root.Send(qpid, idle)
	wait.For(t, waitTimeout, func() bool { return relayer.InflightTo("far.example") == 1 }, "a transaction to far.example")
	close(gate)
	for _, id := range ids {
		wait.For(t, 2*time.Second, func() bool { return queue.Deleted(id) },
			"message %s, handed to the relay actor before it was retired, is sent", id)
	}
}

// A relayed recipient is recorded as delivered at once, while other
// attempts of the same message are still in flight: a crash before they
// end does not relay it again.
func TestRelayedRecipientIsRecordedBeforeTheOtherAttemptsEnd(t *testing.T) {
	relayer := actorstest.NewRelayer()
	slow := relayer.Block("slow.example")
	queue := actorstest.NewQueue()
	s := startSystem(t, testConfig(), Deps{Queue: queue, Relayer: relayer})
	id := enqueue(t, s, newEnvelope("bob@example.test", "a@fast.example", "b@slow.example"), testBody("two domains"))
	queue.WaitUpdate(t, id, "the fast recipient recorded as delivered while the slow one is in flight", func(env *mail.Envelope) bool {
		return env.Recipient(1).State == mail.StateDelivered && env.Recipient(2).State == mail.StatePending
	})
	actorstest.Release(t, slow, "the slow domain")
	queue.WaitDeleted(t, id)
}
