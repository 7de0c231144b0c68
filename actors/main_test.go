package actors

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/tlog"
)

// The fakes of package actorstest are what the actors stand on.
var (
	_ PartitionData = (*actorstest.Partition)(nil)
	_ QueueStore    = (*actorstest.Queue)(nil)
	_ Relayer       = (*actorstest.Relayer)(nil)
	_ Submitter     = (*actorstest.Submitter)(nil)
	_ Placement     = (*actorstest.Placement)(nil)
)

// Every test stops what it starts (System.Stop, PoisonFuture, store Close);
// goleak checks that no goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// protoactor's dead-letter log throttle keeps a goroutine for one
		// DeadLetterThrottleInterval (1 s) after the first dead letter
		// of a period (a message to an actor that has stopped, say a
		// relay goroutine's report after shutdown); it ends by itself
		// and nothing can stop it earlier. Its name depends on inlining.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
	)
}

// waitTimeout bounds every wait of these tests (wait.For, the probes'
// Expect). The waits are for things that take milliseconds; the bound is
// only there to fail instead of hang.
const waitTimeout = 10 * time.Second

// receive returns the next value of ch, failing the test after waitTimeout.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("not within %v: %s", waitTimeout, what)
		panic("unreachable")
	}
}

// testConfig is a Config with timers short enough for unit tests.
func testConfig() Config {
	return Config{
		Partitions:     1,
		Hostname:       "mx.example.test",
		LocalDomains:   []string{"example.test"},
		AccountIdle:    time.Minute,
		RelayIdle:      time.Minute,
		RequestTimeout: 5 * time.Second,
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     400 * time.Millisecond,
	}
}

// startSystem starts a System and stops it when the test ends. Deps left
// nil get fakes: an empty queue, a relayer that delivers everything, empty
// partitions (unless a Placement is given), a logger into the test's log
// (every record, Debug included, as "[actors] level=... msg=...", shown
// when the test fails or with -v; tlog drops what a goroutine still logs
// after the test).
func startSystem(t testing.TB, cfg Config, deps Deps) *System {
	t.Helper()
	if deps.Queue == nil {
		deps.Queue = actorstest.NewQueue()
	}
	if deps.Relayer == nil {
		deps.Relayer = actorstest.NewRelayer()
	}
	if deps.Logger == nil {
		deps.Logger = tlog.New(t, "actors")
	}
	if deps.OpenPartition == nil && deps.Placement == nil {
		parts := make([]*actorstest.Partition, max(cfg.Partitions, 1))
		for i := range parts {
			parts[i] = actorstest.NewPartition(i)
		}
		deps.OpenPartition = openFake(parts...)
	}
	s, err := Start(cfg, deps)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Stop)
	waitRecovered(t, s.root, s.queue)
	return s
}

// waitRecovered returns once the queue actor has recovered its store: its
// first answer comes after its start. (Start does not wait for that; see
// TestEnqueueDuringRecoveryAttemptsOnce. Tests of other behaviour wait, so
// that they do not trip over that.)
func waitRecovered(t testing.TB, root *actor.RootContext, queue *actor.PID) {
	t.Helper()
	if _, err := root.RequestFuture(queue, &queueList{}, waitTimeout).Result(); err != nil {
		t.Fatalf("queue actor not answering: %v", err)
	}
}

// openFake is an OpenPartition that hands out fake partitions by id.
func openFake(parts ...*actorstest.Partition) OpenPartition {
	return func(id int) (PartitionData, error) {
		if id < 0 || id >= len(parts) {
			return nil, fmt.Errorf("no fake partition %d", id)
		}
		return parts[id], nil
	}
}

// testBody is a small RFC 5322 message.
func testBody(subject string) []byte {
	return []byte("From: sender@remote.example\r\nTo: rcpt@example.test\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@remote.example>\r\n\r\nHello, " + subject + ".\r\n")
}

// newEnvelope returns an envelope with a fresh id for the given recipients.
// Enqueue hands the envelope to the queue actor, which owns it from then
// on: tests keep only its id (and clones made before Enqueue).
func newEnvelope(from string, rcpts ...string) *mail.Envelope {
	env := &mail.Envelope{ID: mail.NewID(time.Now()), From: from, Source: mail.SourceSMTP}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, &mail.Recipient{Addr: r})
	}
	return env
}

// message is env with body, as the Enqueuer takes it.
func message(env *mail.Envelope, body []byte) *mail.Message {
	return &mail.Message{Envelope: env, Body: mail.BytesBody(body)}
}

// rcptOf returns the recipient of env with key, failing t when it has none.
func rcptOf(t testing.TB, env *mail.Envelope, key int) *mail.Recipient {
	t.Helper()
	r := env.Recipient(key)
	if r == nil {
		t.Fatalf("envelope %s has no recipient with key %d", env.ID, key)
	}
	return r
}

// inState is a condition for Queue.WaitUpdate: the recipient with key is in
// state st.
func inState(key int, st mail.RcptState) func(*mail.Envelope) bool {
	return func(e *mail.Envelope) bool {
		r := e.Recipient(key)
		return r != nil && r.State == st
	}
}

// enqueue enqueues env with body and returns its id. The Enqueuer gives
// the recipients of a new envelope the keys 1, 2, ... in their order.
func enqueue(t testing.TB, s *System, env *mail.Envelope, body []byte) string {
	t.Helper()
	return enqueueTo(t, s.Enqueuer(), env, body)
}

func enqueueTo(t testing.TB, enq *Enqueuer, env *mail.Envelope, body []byte) string {
	t.Helper()
	id := env.ID
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := enq.Enqueue(ctx, message(env, body)); err != nil {
		t.Fatalf("Enqueue %s: %v", id, err)
	}
	return id
}

// deliverMsg is the Local Delivery of one message from
// sender@remote.example to one recipient (key 1) of account.
func deliverMsg(queueID, rcpt, account string, raw []byte) *pb.Deliver {
	return deliverFrom(queueID, "sender@remote.example", rcpt, account, raw)
}

func deliverFrom(queueID, from, rcpt, account string, raw []byte) *pb.Deliver {
	return &pb.Deliver{
		Envelope: &pb.Envelope{
			Id: queueID, From: from, ReceivedUnixNano: time.Now().UnixNano(), Source: string(mail.SourceSMTP),
			Recipients: []*pb.Recipient{{Key: 1, Address: rcpt, Account: account}},
		},
		Body: raw,
	}
}

// rcpt is a recipient of a Local Delivery: its key, its address and the
// account the address delivers to.
func rcpt(key int32, addr, account string) *pb.Recipient {
	return &pb.Recipient{Key: key, Address: addr, Account: account}
}

// deliverTo is the Local Delivery of one message from
// sender@remote.example to rcpts (recipients of one account, as Local
// Delivery sends them).
func deliverTo(queueID string, raw []byte, rcpts ...*pb.Recipient) *pb.Deliver {
	d := deliverFrom(queueID, "sender@remote.example", "", "", raw)
	d.Envelope.Recipients = rcpts
	return d
}

// resultsByKey checks that dr answers the Deliver of queueID with exactly
// one result for each of keys (in any order) and returns them by key.
func resultsByKey(t testing.TB, dr *pb.DeliverResult, queueID string, keys ...int32) map[int32]*pb.Result {
	t.Helper()
	if dr.GetQueueId() != queueID {
		t.Fatalf("DeliverResult for %q, want the answer for %q", dr.GetQueueId(), queueID)
	}
	got := make(map[int32]*pb.Result, len(dr.GetResults()))
	var named []int32
	for _, r := range dr.GetResults() {
		got[r.GetRcpt()] = r
		named = append(named, r.GetRcpt())
	}
	ok := len(named) == len(keys) && len(got) == len(keys)
	for _, k := range keys {
		ok = ok && got[k] != nil
	}
	if !ok {
		t.Fatalf("DeliverResult for %s names recipients %v, want one result for each of %v", queueID, named, keys)
	}
	return got
}

// deliver sends one Deliver to a partition actor and waits for the answer.
func deliver(t testing.TB, root *actor.RootContext, pid *actor.PID, d *pb.Deliver) *pb.DeliverResult {
	t.Helper()
	res, err := root.RequestFuture(pid, d, waitTimeout).Result()
	if err != nil {
		t.Fatalf("Deliver %s: %v", d.GetEnvelope().GetId(), err)
	}
	dr, ok := res.(*pb.DeliverResult)
	if !ok {
		t.Fatalf("Deliver %s: reply %T", d.GetEnvelope().GetId(), res)
	}
	return dr
}

// only returns the one result of a DeliverResult for a Deliver of one
// recipient, checking that it names that recipient (key 1).
func only(t testing.TB, dr *pb.DeliverResult) *pb.Result {
	t.Helper()
	if len(dr.Results) != 1 || dr.Results[0].GetRcpt() != 1 {
		t.Fatalf("DeliverResult of %s: %v, want one result for recipient 1", dr.QueueId, dr.Results)
	}
	return dr.Results[0]
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newActorSystem is a bare actor system for tests that spawn single actors.
func newActorSystem(log *slog.Logger) *actor.ActorSystem {
	return actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }),
		actor.WithDeadLetterRequestLogging(false),
	)
}
