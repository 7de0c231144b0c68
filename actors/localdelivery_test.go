package actors

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
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

// RetryLocal (partition owners changed) attempts every deferred local
// recipient at once, without waiting for its retry time.
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
	s.RetryLocal()
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
// (a fake, say) and s's clock.
func spawnPartitionWith(t *testing.T, s *System, part *actorstest.Partition, sub Submitter) *actor.PID {
	t.Helper()
	root := s.ActorSystem().Root
	pid := root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return newPartitionActor(part.ID(), openFake(part), &s.cfg, s.Stats(), s.log, sub, s.now)
	}))
	t.Cleanup(func() { _ = root.PoisonFuture(pid).Wait() })
	return pid
}
