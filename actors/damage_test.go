package actors

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/damage"
	"github.com/homing-mail/homing/testkit/tlog"
	"github.com/homing-mail/homing/testkit/wait"
)

// bigBody is a message of 64 KiB (in the queue store's value log) whose
// text repeats marker.
func bigBody(marker string) []byte {
	b := testBody(marker)
	for len(b) < 64<<10 {
		b = append(b, marker+"\r\n"...)
	}
	return b
}

// storeQueued writes msgs into a new queue store in dir, as the Enqueuer
// would have (recipients pending, keys assigned), and closes it.
func storeQueued(t *testing.T, dir string, msgs ...*mail.Message) {
	t.Helper()
	q, err := storage.OpenQueue(dir, storage.Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		m.Envelope.Received = time.Now()
		m.Envelope.Size = m.Body.Size()
		for _, r := range m.Envelope.Recipients {
			r.State = mail.StatePending
		}
		m.Envelope.AssignKeys()
		if err := q.Put(testCtx(t), m); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
}

// reopenQueueStore opens the queue store in dir again, closed after the
// test (after the System, which stops writing to it first).
func reopenQueueStore(t *testing.T, dir string) *storage.QueueStore {
	t.Helper()
	q, err := storage.OpenQueue(dir, storage.Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatalf("reopening the queue: %v", err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("closing the queue: %v", err)
		}
	})
	return q
}

// queued returns the queue actor's copy of message id (nil when it has none).
func queued(t *testing.T, s *System, id string) *mail.Envelope {
	t.Helper()
	envs, err := s.Queue(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range envs {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// A queued message whose body is in a damaged value log (badger gives back
// an empty value and only logs it): the queue holds it as damaged with the
// reason, persisted, logged once with its id; it never reaches the relayer
// nor a mailbox, not after a retry either; the intact message before it is
// relayed; the administrator deletes the damaged one.
func TestQueueHoldsDamagedMessage(t *testing.T) {
	const ann = "ann@example.test"
	dir := t.TempDir()
	intact := newEnvelope("bob@remote.example", "carl@far.example")
	broken := newEnvelope("bob@remote.example", "dan@far.example", ann)
	broken.ID = mail.NewID(time.Now().Add(time.Millisecond))
	broken.Recipients[1].Account = ann
	storeQueued(t, dir, message(intact, bigBody("intact-body")), message(broken, bigBody("damaged-body")))
	damage.TruncateValueLog(t, dir, []byte("damaged-body"))

	store := reopenQueueStore(t, dir)
	var lines tlog.Lines
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	relayer := actorstest.NewRelayer()
	s := startSystem(t, testConfig(), Deps{Queue: store, Relayer: relayer, OpenPartition: openFake(part),
		Logger: tlog.New(t, "actors", tlog.KeepIn(&lines))})

	wait.For(t, waitTimeout, func() bool { return goneFrom(store, intact.ID) }, "the intact message is relayed and leaves the queue")
	if calls := relayer.CallsFor(intact.ID); len(calls) != 1 || !bytes.Equal(calls[0].Body, bigBody("intact-body")) {
		t.Fatalf("the intact message was relayed %d times (want once, with its body)", len(calls))
	}
	wait.For(t, waitTimeout, func() bool {
		e := queued(t, s, broken.ID)
		return e != nil && e.Damaged != ""
	}, "the damaged message is held as damaged")
	e := queued(t, s, broken.ID)
	if !strings.Contains(e.Damaged, "data damaged") || !strings.Contains(e.Damaged, broken.ID) {
		t.Errorf("Damaged = %q, want the reason naming the message", e.Damaged)
	}
	wait.For(t, waitTimeout, func() bool {
		env, err := store.Envelope(broken.ID)
		return err == nil && env.Damaged != ""
	}, "the damaged mark is persisted")
	logged := func() int { return lines.Count("queued message damaged", "queueID="+broken.ID) }
	if logged() != 1 {
		t.Errorf("logged %d times, want once:\n%s", logged(), lines.String())
	}
	// It is not retried: no attempt, no second log line, for several
	// backoff periods (MinBackoff is 50 ms here).
	reached := func() bool { return len(relayer.CallsFor(broken.ID)) > 0 || len(part.Stored(ann)) > 0 }
	wait.Never(t, 300*time.Millisecond, func() bool { return reached() || logged() > 1 },
		"the damaged message is attempted again")

	// A retry reads it again: still damaged, held again, never sent.
	if err := s.QueueAction(testCtx(t), broken.ID, "retry"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	wait.For(t, waitTimeout, func() bool { return logged() == 2 }, "the retried message is found damaged again")
	if reached() {
		t.Fatalf("a damaged message reached the relayer (%d calls) or a mailbox (%d)", len(relayer.CallsFor(broken.ID)), len(part.Stored(ann)))
	}
	if e := queued(t, s, broken.ID); e == nil || e.Damaged == "" {
		t.Fatalf("after the retry: %+v, want it held as damaged", e)
	}

	if err := s.QueueAction(testCtx(t), broken.ID, "delete"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	wait.For(t, waitTimeout, func() bool { return goneFrom(store, broken.ID) }, "the deleted message leaves the store")
}

// A message held as damaged by an earlier run (or by homing check
// --repair) stays held after a restart: recovery does not attempt it.
func TestQueueKeepsDamagedMessageHeldAfterRestart(t *testing.T) {
	dir := t.TempDir()
	env := newEnvelope("bob@remote.example", "dan@far.example")
	storeQueued(t, dir, message(env, testBody("held as damaged")))
	store := reopenQueueStore(t, dir)
	marked := env.Clone()
	marked.Damaged = "storage: body of queue message " + env.ID + ": storage: data damaged: CRC-32C mismatch"
	if err := <-store.Update(marked); err != nil {
		t.Fatal(err)
	}
	relayer := actorstest.NewRelayer()
	s := startSystem(t, testConfig(), Deps{Queue: store, Relayer: relayer})
	if e := queued(t, s, env.ID); e == nil || e.Damaged != marked.Damaged {
		t.Fatalf("recovered %+v, want it listed as damaged", e)
	}
	wait.Never(t, 200*time.Millisecond, func() bool { return len(relayer.CallsFor(env.ID)) > 0 }, "a message held as damaged is relayed")
}

// An envelope that no longer decodes (its record overwritten in badger's
// table) is listed as damaged, with no recipients, and is neither
// attempted nor taken for done and removed; retry says it cannot be, and
// the administrator deletes it.
func TestQueueListsUndecodableEnvelopeAsDamaged(t *testing.T) {
	dir := t.TempDir()
	env := newEnvelope("bob@remote.example", "dan@far.example")
	storeQueued(t, dir, message(env, testBody("envelope damaged")))
	damage.Overwrite(t, dir, ".sst", []byte(`"from":`))
	store := reopenQueueStore(t, dir)
	relayer := actorstest.NewRelayer()
	s := startSystem(t, testConfig(), Deps{Queue: store, Relayer: relayer})

	e := queued(t, s, env.ID)
	if e == nil || !strings.Contains(e.Damaged, "envelope") || len(e.Recipients) != 0 {
		t.Fatalf("recovered %+v, want it listed as damaged, without recipients", e)
	}
	wait.Never(t, 200*time.Millisecond, func() bool { return goneFrom(store, env.ID) || len(relayer.CallsFor(env.ID)) > 0 },
		"a message with a damaged envelope is attempted or removed by itself")
	if err := s.QueueAction(testCtx(t), env.ID, "retry"); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("retry of an undecodable envelope = %v, want an error saying to delete it", err)
	}
	if err := s.QueueAction(testCtx(t), env.ID, "delete"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTimeout, func() bool { return goneFrom(store, env.ID) }, "the deleted message leaves the store")
}
