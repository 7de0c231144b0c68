package actors

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/clock"
	"github.com/homing-mail/homing/testkit/probe"
	"github.com/homing-mail/homing/testkit/wait"
)

// A disk error while storing is a temporary failure (451 4.3.0): the
// queue keeps the message, retries after MinBackoff, and the retry stores
// it once.
func TestAppendErrorIsRetriedThenStored(t *testing.T) {
	const ann = "ann@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	part.FailAppends(1, errors.New("write /data/p0000/000001.vlog: input/output error"))
	queue := actorstest.NewQueue()
	stats := NewStats(nil)
	cfg := testConfig()
	s := startSystem(t, cfg, Deps{OpenPartition: openFake(part), Queue: queue, Stats: stats})

	id := enqueue(t, s, newEnvelope("bob@remote.example", ann), testBody("disk error"))
	queue.WaitDeleted(t, id)

	deferred := queue.Updates(id)
	if len(deferred) != 1 {
		t.Fatalf("%d updates of the message, want 1 (the deferral)", len(deferred))
	}
	r := rcptOf(t, deferred[0], 1)
	if r.State != mail.StateDeferred || r.Attempts != 1 || r.Status != mail.StatusLocalError || !strings.HasPrefix(r.LastError, "451 4.3.0") {
		t.Errorf("after the failed attempt: state %s, attempts %d, status %q, last error %q; want deferred, 1, 4.3.0, 451 4.3.0 ...",
			r.State, r.Attempts, r.Status, r.LastError)
	}
	if got := r.NextAttempt.Sub(r.FirstTempFailure); got != cfg.MinBackoff {
		t.Errorf("next attempt %v after the failure, want MinBackoff %v", got, cfg.MinBackoff)
	}
	if got := part.AppendCalls(); got != 2 {
		t.Errorf("%d Append calls, want 2 (the failure and the retry)", got)
	}
	msgs := part.Stored(ann)
	if len(msgs) != 1 || msgs[0].DedupKey != id+"/"+ann {
		t.Fatalf("stored %+v, want one message with dedup key %s/%s", msgs, id, ann)
	}
	if ops := queue.Ops(); len(ops) != 3 {
		t.Errorf("queue writes %v, want put, update, delete (no report)", opKinds(ops))
	}
	if d, l := stats.Deferred.Load(), stats.DeliveredLocal.Load(); d != 1 || l != 1 {
		t.Errorf("stats: deferred %d, delivered locally %d; want 1, 1", d, l)
	}
}

// A mailbox store below its free-space limit (storage.ErrNoSpace, as an
// append on this node or one that came over the cluster channel meets it)
// is 452 4.3.1, mail system full: the queue keeps the message and retries
// it, and the account actor logs nothing per message (the store's guard
// says it once).
func TestAppendNoSpaceDefersWith431(t *testing.T) {
	const ann = "ann@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	part.FailAppends(1, fmt.Errorf("storage: append to %s: %w: new mail refused", ann, storage.ErrNoSpace))
	queue := actorstest.NewQueue()
	var logs bytes.Buffer
	cfg := testConfig()
	s := startSystem(t, cfg, Deps{OpenPartition: openFake(part), Queue: queue,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})

	id := enqueue(t, s, newEnvelope("bob@remote.example", ann), testBody("no space"))
	queue.WaitDeleted(t, id)
	deferred := queue.Updates(id)
	if len(deferred) != 1 {
		t.Fatalf("%d updates of the message, want 1 (the deferral)", len(deferred))
	}
	r := rcptOf(t, deferred[0], 1)
	if r.State != mail.StateDeferred || r.Status != mail.StatusSystemFull || !strings.HasPrefix(r.LastError, "452 4.3.1") {
		t.Errorf("after the refused append: state %s, status %q, last error %q; want deferred, 4.3.1, 452 4.3.1 ...",
			r.State, r.Status, r.LastError)
	}
	if msgs := part.Stored(ann); len(msgs) != 1 {
		t.Fatalf("%d stored after the retry, want 1", len(msgs))
	}
	if logs.Len() > 0 {
		t.Errorf("warnings or errors logged for a refusal the guard reports:\n%s", logs.String())
	}
}

func opKinds(ops []actorstest.Op) []string {
	out := make([]string, len(ops))
	for i, op := range ops {
		out[i] = string(op.Kind) + " " + op.ID
	}
	return out
}

// With no owner for the account's partition the recipient is deferred
// with 4.4.3, and delivered once an owner appears.
func TestNoPartitionOwnerDefersThenDelivers(t *testing.T) {
	const ann = "ann@example.test"
	place := &actorstest.Placement{}
	queue := actorstest.NewQueue()
	cfg := testConfig()
	s := startSystem(t, cfg, Deps{Placement: place, Queue: queue})
	ctx := testCtx(t)

	// Without an owner nobody can say whether the address exists:
	// accepting it would be a guess, so Enqueue fails temporarily.
	unresolved := newEnvelope("bob@remote.example", ann)
	if err := s.Enqueuer().Enqueue(ctx, message(unresolved, testBody("unresolved"))); !errors.Is(err, mail.ErrUnavailable) {
		t.Errorf("Enqueue with an unresolvable local recipient = %v, want ErrUnavailable", err)
	}
	if queue.FirstPut(unresolved.ID) != nil {
		t.Error("a message that could not be routed was queued")
	}

	// A recipient resolved elsewhere (a frontend in a cluster).
	env := newEnvelope("bob@remote.example", ann)
	env.Recipients[0].Account = ann
	id := enqueue(t, s, env, testBody("no owner"))
	got := queue.WaitUpdate(t, id, "the recipient is deferred", inState(1, mail.StateDeferred))
	if r := rcptOf(t, got, 1); r.Status != mail.StatusDirectoryFailure || !strings.HasPrefix(r.LastError, "451 4.4.3") {
		t.Errorf("deferred with status %q, last error %q; want 4.4.3", r.Status, r.LastError)
	}
	if queue.Deleted(id) {
		t.Fatal("the message left the queue without an owner for its partition")
	}

	// An owner appears: the next retry delivers.
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	place.Set(spawnPartition(t, s, part))
	queue.WaitDeleted(t, id)
	if msgs := part.Stored(ann); len(msgs) != 1 {
		t.Errorf("%d messages stored once the partition had an owner, want 1", len(msgs))
	}
}

// A local recipient whose backend did not answer or had no owner (4.4.x)
// is retried after at most LocalRetry, whatever the backoff; a remote one
// keeps the backoff.
func TestLocalRetryCapsBackoffForUnreachableOwner(t *testing.T) {
	const ann = "ann@example.test"
	place := &actorstest.Placement{}
	relayer := actorstest.NewRelayer()
	relayer.Answer(func(*mail.Recipient, int) mail.Result { return mail.Temp(mail.StatusNoAnswer, "no answer from host") })
	queue := actorstest.NewQueue()
	cfg := testConfig()
	cfg.MinBackoff, cfg.MaxBackoff, cfg.LocalRetry = time.Hour, time.Hour, 50*time.Millisecond
	s := startSystem(t, cfg, Deps{Placement: place, Queue: queue, Relayer: relayer})

	local := newEnvelope("bob@remote.example", ann)
	local.Recipients[0].Account = ann
	lid := enqueue(t, s, local, testBody("local"))
	rid := enqueue(t, s, newEnvelope("bob@remote.example", "u@far.example"), testBody("remote"))
	isDeferred := inState(1, mail.StateDeferred)
	if r := rcptOf(t, queue.WaitUpdate(t, lid, "deferred", isDeferred), 1); r.NextAttempt.Sub(r.FirstTempFailure) != cfg.LocalRetry {
		t.Errorf("local recipient without an owner retried after %v, want LocalRetry %v",
			r.NextAttempt.Sub(r.FirstTempFailure), cfg.LocalRetry)
	}
	if r := rcptOf(t, queue.WaitUpdate(t, rid, "deferred", isDeferred), 1); r.NextAttempt.Sub(r.FirstTempFailure) != cfg.MinBackoff {
		t.Errorf("remote 4.4.1 retried after %v, want MinBackoff %v", r.NextAttempt.Sub(r.FirstTempFailure), cfg.MinBackoff)
	}
	// The capped retries reach the owner once there is one.
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	place.Set(spawnPartition(t, s, part))
	queue.WaitDeleted(t, lid)
}

// RetryLocal (the owner of a partition changed) attempts a deferred local
// recipient of that partition that waited for an owner at once, without
// waiting for its retry time.
func TestRetryLocalAttemptsDeferredLocalRecipientsNow(t *testing.T) {
	const ann = "ann@example.test"
	place := &actorstest.Placement{}
	queue := actorstest.NewQueue()
	cfg := testConfig()
	cfg.MinBackoff, cfg.MaxBackoff, cfg.LocalRetry = time.Hour, time.Hour, time.Hour
	s := startSystem(t, cfg, Deps{Placement: place, Queue: queue})

	env := newEnvelope("bob@remote.example", ann)
	env.Recipients[0].Account = ann
	id := enqueue(t, s, env, testBody("waiting for an owner"))
	queue.WaitUpdate(t, id, "deferred", inState(1, mail.StateDeferred))

	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	place.Set(spawnPartition(t, s, part))
	s.RetryLocal([]int{0})
	queue.WaitDeleted(t, id)
	if n := len(part.Stored(ann)); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

// spawnPartition runs a partition actor for part in s's actor system (as
// the owner of a partition in a cluster would), stopped after the test.
// Its account actors submit what their rules generate through s.
func spawnPartition(t *testing.T, s *System, part *actorstest.Partition) *actor.PID {
	t.Helper()
	return spawnPartitionWith(t, s, part, s)
}

// spawnPartitionWith is spawnPartition with the account actors' Submitter
// (a fake, say), s's clock and receiver middleware on the partition actor
// (a probe's Tap, say).
func spawnPartitionWith(t *testing.T, s *System, part *actorstest.Partition, sub Submitter, mw ...actor.ReceiverMiddleware) *actor.PID {
	t.Helper()
	root := s.ActorSystem().Root
	pid := root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return newPartitionActor(part.ID(), openFake(part), &s.cfg, s.Stats(), s.log, sub, s.now)
	}, actor.WithReceiverMiddleware(mw...)))
	t.Cleanup(func() { _ = root.PoisonFuture(pid).Wait() })
	return pid
}

// recipientsOf lists the recipients of a Deliver as "key address
// (account)", for comparisons whose failures read.
func recipientsOf(d *pb.Deliver) []string {
	var out []string
	for _, r := range d.GetEnvelope().GetRecipients() {
		out = append(out, fmt.Sprintf("%d %s (%s)", r.GetKey(), r.GetAddress(), r.GetAccount()))
	}
	return out
}

// expectDelivers takes the next n Delivers a probe standing in for the
// partitions receives, by the account of their first recipient, failing
// the test when two are for one account.
func expectDelivers(t *testing.T, p *probe.Probe, n int) map[string]probe.Delivery {
	t.Helper()
	out := map[string]probe.Delivery{}
	for range n {
		d := probe.ExpectDelivery[*pb.Deliver](p, waitTimeout)
		rcpts := d.Message.(*pb.Deliver).GetEnvelope().GetRecipients()
		if len(rcpts) == 0 {
			t.Fatalf("a Deliver without recipients")
		}
		acct := rcpts[0].GetAccount()
		if _, dup := out[acct]; dup {
			t.Fatalf("two Delivers for account %s in one attempt, want one per account", acct)
		}
		out[acct] = d
	}
	return out
}

// checkDeliver checks that d is the Local Delivery of the message queueID
// (from, body) to exactly the recipients want, in their order.
func checkDeliver(t *testing.T, d probe.Delivery, queueID, from string, body []byte, want ...string) *pb.Deliver {
	t.Helper()
	dv := d.Message.(*pb.Deliver)
	env := dv.GetEnvelope()
	if env.GetId() != queueID || env.GetFrom() != from || !bytes.Equal(dv.GetBody(), body) {
		t.Errorf("Deliver of %q from %q with %d bytes, want %s from %s with the queued body (%d bytes)",
			env.GetId(), env.GetFrom(), len(dv.GetBody()), queueID, from, len(body))
	}
	if got := recipientsOf(dv); !slices.Equal(got, want) {
		t.Errorf("Deliver of %s to %q, want %q", queueID, got, want)
	}
	return dv
}

// answer is the DeliverResult of the Deliver of queueID with results.
func answer(queueID string, results ...mail.Result) *pb.DeliverResult {
	dr := &pb.DeliverResult{QueueId: queueID}
	for _, r := range results {
		dr.Results = append(dr.Results, pbResult(r))
	}
	return dr
}

// keyed is res for the recipient with key.
func keyed(key int, res mail.Result) mail.Result {
	res.Rcpt = key
	return res
}

// The queue's Local Delivery, with a probe standing in for the partitions:
// one Deliver per account, each carrying the queued message and naming its
// recipients by the keys they have in the queue (7, 3 and 12 here, not
// their positions); the answers, in any order, are recorded on the
// recipients they name; the retry asks again for the deferred recipient
// only.
func TestLocalDeliveryAsksOncePerAccountAndRecordsTheAnswersByKey(t *testing.T) {
	const ann, anna, cat, bob = "ann@example.test", "anna@example.test", "cat@example.test", "bob@remote.example"
	place, queue, clk := &actorstest.Placement{}, actorstest.NewQueue(), clock.New(clock.Start)
	s := startSystem(t, testConfig(), Deps{Placement: place, Queue: queue, Now: clk.Now})
	partitions := probe.New(t, s.ActorSystem())
	place.Set(partitions.PID())
	ctx := testCtx(t)

	// Resolved elsewhere (a frontend): the queue asks the partitions no
	// directory question, only for delivery.
	env := newEnvelope(bob, ann, anna, cat)
	for i, r := range env.Recipients {
		r.Key, r.Account = []int{7, 3, 12}[i], []string{ann, ann, cat}[i]
	}
	body := testBody("one per account")
	id := enqueue(t, s, env, body)

	delivers := expectDelivers(t, partitions, 2)
	checkDeliver(t, delivers[ann], id, bob, body, "7 ann@example.test (ann@example.test)", "3 anna@example.test (ann@example.test)")
	checkDeliver(t, delivers[cat], id, bob, body, "12 cat@example.test (cat@example.test)")
	partitions.ExpectNothing(20 * time.Millisecond) // nothing for anyone else

	// ann's answer names its recipients in the other order.
	full := mail.Result{Code: 452, Status: mail.StatusMailboxFull, Text: "mailbox full"}
	partitions.Reply(delivers[ann], answer(id, keyed(3, mail.Delivered("stored")), keyed(7, full)))
	partitions.Reply(delivers[cat], answer(id, keyed(12, mail.Perm(mail.StatusNoSuchUser, "no such mailbox"))))
	up := queue.WaitUpdate(t, id, "the attempt is recorded", func(*mail.Envelope) bool { return true })
	for key, want := range map[int]struct {
		state  mail.RcptState
		status mail.Status
		last   string
	}{
		7:  {mail.StateDeferred, mail.StatusMailboxFull, "452 4.2.2 mailbox full"},
		3:  {mail.StateDelivered, mail.StatusOK, ""},
		12: {mail.StateFailed, mail.StatusNoSuchUser, "550 5.1.1 no such mailbox"},
	} {
		if r := rcptOf(t, up, key); r.State != want.state || r.Status != want.status || r.LastError != want.last || r.Attempts != 1 {
			t.Errorf("recipient %d (%s) after the first attempt: %s %s %q, %d attempts; want %s %s %q, 1 attempt",
				key, r.Addr, r.State, r.Status, r.LastError, r.Attempts, want.state, want.status, want.last)
		}
	}

	// The retry asks for the deferred recipient alone, still by its key.
	if err := s.QueueAction(ctx, id, "retry"); err != nil {
		t.Fatal(err)
	}
	retry := probe.ExpectDelivery[*pb.Deliver](partitions, waitTimeout)
	checkDeliver(t, retry, id, bob, body, "7 ann@example.test (ann@example.test)")
	partitions.Reply(retry, answer(id, keyed(7, mail.Delivered("stored"))))
	// Every recipient is final: the message leaves the queue after the
	// report on recipient 12 (to bob, remote: no Local Delivery).
	queue.WaitDeleted(t, id)
	queue.WaitDeleted(t, reportID(id, reportFailure))
	var journey []string
	for _, e := range s.Stats().Journal.Events(id) {
		if e.ID == id && slices.Contains([]string{"delivered", "deferred", "failed"}, e.Event) {
			journey = append(journey, e.Event+" "+strings.SplitN(e.Detail, ":", 2)[0])
		}
	}
	if len(journey) >= 3 {
		slices.Sort(journey[:3]) // the first attempt's three, in the queue's order
	}
	if want := []string{"deferred " + ann, "delivered " + anna, "failed " + cat, "delivered " + ann}; !slices.Equal(journey, want) {
		t.Errorf("the message's journey %q, want %q", journey, want)
	}
	partitions.ExpectNothing(20 * time.Millisecond)
}

// When the partition does not answer a Deliver within RequestTimeout the
// message may or may not be stored: the recipient is deferred with 4.4.1
// (no answer), and the retry, answered, delivers it. The probe stands in
// for the partition and stays silent the first time.
func TestUnansweredLocalDeliveryIsDeferred441AndTheRetryDelivers(t *testing.T) {
	const ann, bob = "ann@example.test", "bob@remote.example"
	place, queue, clk := &actorstest.Placement{}, actorstest.NewQueue(), clock.New(clock.Start)
	cfg := testConfig()
	cfg.RequestTimeout = 300 * time.Millisecond // how long Local Delivery waits for an answer
	s := startSystem(t, cfg, Deps{Placement: place, Queue: queue, Now: clk.Now})
	partition := probe.New(t, s.ActorSystem())
	place.Set(partition.PID())

	env := newEnvelope(bob, ann)
	env.Recipients[0].Key, env.Recipients[0].Account = 5, ann
	body := testBody("unanswered")
	id := enqueue(t, s, env, body)

	checkDeliver(t, probe.ExpectDelivery[*pb.Deliver](partition, waitTimeout), id, bob, body, "5 ann@example.test (ann@example.test)")
	// ... and no answer.
	r := rcptOf(t, queue.WaitUpdate(t, id, "the unanswered attempt is deferred", inState(5, mail.StateDeferred)), 5)
	if r.Status != mail.StatusNoAnswer || r.LastError != "451 4.4.1 no answer from the mailbox server" || r.Attempts != 1 {
		t.Errorf("unanswered attempt: %s %q after %d attempts, want 4.4.1 451 4.4.1 no answer from the mailbox server after 1",
			r.Status, r.LastError, r.Attempts)
	}
	if got := r.NextAttempt.Sub(r.FirstTempFailure); got != cfg.MinBackoff {
		t.Errorf("retry %v after the failure, want MinBackoff %v", got, cfg.MinBackoff)
	}
	if queue.Deleted(id) {
		t.Fatal("the message left the queue without an answer")
	}

	clk.Advance(cfg.MinBackoff) // the retry is due
	retry := probe.ExpectDelivery[*pb.Deliver](partition, waitTimeout)
	checkDeliver(t, retry, id, bob, body, "5 ann@example.test (ann@example.test)")
	partition.Reply(retry, answer(id, keyed(5, mail.Delivered("stored"))))
	queue.WaitDeleted(t, id)
	if ups := queue.Updates(id); len(ups) != 1 {
		t.Errorf("%d updates of the message, want 1 (the deferral)", len(ups))
	}
	partition.ExpectNothing(20 * time.Millisecond)
}

// A kick after an owner change retries only the recipients that wait for
// that owner: deferred for want of an answer (4.4.x) in one of the
// partitions named. One over quota (4.2.2) in the same partition, or
// waiting for another partition's owner, keeps its backoff (issue #9: an
// over-quota message reached 8 attempts in 2 minutes of membership churn).
func TestRetryLocalKicksOnlyWhatWaitsForThoseOwners(t *testing.T) {
	cfg := testConfig()
	cfg.Partitions = 2
	cfg.MinBackoff, cfg.MaxBackoff, cfg.LocalRetry = time.Hour, time.Hour, time.Hour
	var inP0, inP1 string
	for i := 0; inP0 == "" || inP1 == ""; i++ {
		a := fmt.Sprintf("u%d@example.test", i)
		if mail.PartitionOf(a, 2) == 0 && inP0 == "" {
			inP0 = a
		} else if mail.PartitionOf(a, 2) == 1 && inP1 == "" {
			inP1 = a
		}
	}
	queue := actorstest.NewQueue()
	later := time.Now().Add(time.Hour)
	seed := func(id, account string, status mail.Status) {
		queue.Seed(&mail.Envelope{ID: id, From: "bob@remote.example", Received: time.Now(), Source: mail.SourceSMTP,
			Recipients: []*mail.Recipient{{Key: 1, Addr: account, Account: account, State: mail.StateDeferred,
				Status: status, Attempts: 1, NextAttempt: later, FirstTempFailure: time.Now()}}}, testBody(id))
	}
	seed("WAITING0", inP0, mail.StatusDirectoryFailure)
	seed("FULL0", inP0, mail.StatusMailboxFull)
	seed("WAITING1", inP1, mail.StatusNoAnswer)
	parts := []*actorstest.Partition{
		actorstest.NewPartition(0, storage.Account{Address: inP0}),
		actorstest.NewPartition(1, storage.Account{Address: inP1}),
	}
	place := &actorstest.Placement{}
	s := startSystem(t, cfg, Deps{Placement: place, Queue: queue})
	place.Set(spawnPartition(t, s, parts[0])) // one PID for both: the fake answers by account
	s.RetryLocal([]int{0})
	queue.WaitDeleted(t, "WAITING0")
	wait.Never(t, 300*time.Millisecond, func() bool { return queue.Deleted("FULL0") || queue.Deleted("WAITING1") },
		"a kick for partition 0 retried a recipient over quota or one of partition 1")
	if n := parts[0].AppendCalls(); n != 1 {
		t.Fatalf("%d appends in partition 0, want 1 (the over-quota recipient was not tried)", n)
	}
}

// Issue #14, "one mailbox with 50,000 messages: delivered 1,313/s,
// received->stored p50 12 s": a burst for one account is written while
// the sync rounds before it are still going, up to perAccountWindow
// deliveries waiting on one round — not four, which left one account's
// delivery rate at four per sync latency behind the rate mail came in.
func TestBurstForOneAccountSharesSyncRounds(t *testing.T) {
	const ann = "ann@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	part.HoldSyncs()
	defer part.ReleaseSyncs()
	queue := actorstest.NewQueue()
	cfg := testConfig()
	cfg.MaxActive = 2 * perAccountWindow
	s := startSystem(t, cfg, Deps{OpenPartition: openFake(part), Queue: queue})

	var ids []string
	for i := range perAccountWindow + 8 {
		ids = append(ids, enqueue(t, s, newEnvelope("bob@remote.example", ann), testBody(fmt.Sprintf("burst %d", i))))
	}
	const want = 32 // (it was 4)
	wait.For(t, waitTimeout, func() bool { return part.AppendCalls() >= want },
		"%d deliveries to one account written while none is durable yet", want)
	if got := part.AppendCalls(); got != perAccountWindow {
		t.Errorf("%d deliveries written before a sync, want the window's %d", got, perAccountWindow)
	}
	part.ReleaseSyncs()
	for _, id := range ids {
		queue.WaitDeleted(t, id)
	}
	if n := len(part.Stored(ann)); n != len(ids) {
		t.Errorf("%d messages stored, want %d", n, len(ids))
	}
}
