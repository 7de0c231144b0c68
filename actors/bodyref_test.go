package actors

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/tlog"
	"github.com/homing-mail/homing/testkit/wait"
)

// largeBody is an RFC 5322 message of about n bytes (a file of the queue).
func largeBody(marker string, n int) []byte {
	b := testBody(marker)
	for len(b) < n {
		b = append(b, marker+" 0123456789abcdefghijklmnopqrstuvwxyz\r\n"...)
	}
	return b
}

// queueFile writes body through a real queue store's body writer and
// queues it under id, as an SMTP session and the Enqueuer do.
func queueFile(t *testing.T, q *storage.QueueStore, id string, body []byte) *storage.FileBody {
	t.Helper()
	w, err := q.NewBody()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	b, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	env := newEnvelope("sender@remote.example", "ann@example.test")
	env.ID = id
	env.Recipients[0].State = mail.StatePending
	env.AssignKeys()
	if err := q.Put(testCtx(t), &mail.Message{Envelope: env, Body: b}); err != nil {
		t.Fatal(err)
	}
	_, fb, ok := storage.BodyFile(b)
	if !ok {
		t.Fatalf("a body of %d bytes is not a file", len(body))
	}
	return fb
}

// The body server answers pieces of a queued file; fetchBody pulls them in
// order, at most 256 KiB each, and the staged copy is checked against the
// reference: a file overwritten in place is found by its CRC-32C, a
// truncated one by the server, a reference to another body is not found.
func TestFetchBodyInChunks(t *testing.T) {
	q, err := storage.OpenQueue(t.TempDir(), storage.Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	body := largeBody("fetched", 1300<<10)
	fb := queueFile(t, q, "Q1", body)

	log := tlog.New(t, "actors")
	system := newActorSystem(log)
	t.Cleanup(system.Shutdown)
	var pieces, biggest atomic.Int64
	count := func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if g, ok := env.Message.(*pb.GetBody); ok {
				pieces.Add(1)
				if int64(g.GetLength()) > biggest.Load() {
					biggest.Store(int64(g.GetLength()))
				}
			}
			next(c, env)
		}
	}
	server := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &bodyServerActor{queue: q, slots: make(chan struct{}, 2), log: log}
	}, actor.WithReceiverMiddleware(count)))
	ref := &pb.BodyRef{Origin: "elsewhere:1", QueueId: "Q1", Size: fb.Size(), Crc32C: fb.CRC()}

	fetch := func(ref *pb.BodyRef) (mail.Body, error) {
		w := new(mail.MemoryBodyWriter)
		if err := fetchBody(system.Root, server, ref, w, 5*time.Second); err != nil {
			return nil, err
		}
		got, _ := w.Commit()
		return got, checkStaged(got, ref)
	}
	got, err := fetch(ref)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := mail.ReadBody(got); !bytes.Equal(raw, body) {
		t.Fatalf("fetched %d bytes, want the %d queued", len(raw), len(body))
	}
	if want := (int64(len(body)) + bodyChunk - 1) / bodyChunk; pieces.Load() != want || biggest.Load() > bodyChunk {
		t.Fatalf("%d pieces of at most %d bytes; want %d of at most %d", pieces.Load(), biggest.Load(), want, bodyChunk)
	}

	other := &pb.BodyRef{Origin: "elsewhere:1", QueueId: "Q1", Size: fb.Size(), Crc32C: fb.CRC() + 1}
	if _, err := fetch(other); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("a reference to another body: %v, want not found", err)
	}

	f, err := os.OpenFile(fb.Path(), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("DAMAGE"), 700<<10)
	if _, err := fetch(ref); !errors.Is(err, storage.ErrDamaged) || !strings.Contains(err.Error(), "CRC-32C mismatch") {
		t.Fatalf("an overwritten file: %v, want a CRC-32C mismatch (ErrDamaged)", err)
	}
	f.Truncate(500 << 10)
	f.Close()
	if _, err := fetch(ref); !errors.Is(err, storage.ErrDamaged) {
		t.Fatalf("a truncated file: %v, want ErrDamaged", err)
	}
}

// A delivery by reference that repeats one already stored (its work
// done) is answered at once, without fetching the body (here from a node
// that does not exist); a new one whose body cannot be fetched is a
// temporary failure, so the queue tries again.
func TestRepeatedDeliveryByReferenceIsNotFetched(t *testing.T) {
	const ann = "ann@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	if _, err := part.Append(testCtx(t), ann, storage.AppendRequest{DedupKey: "Q2/" + ann, Raw: testBody("stored before")}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig().WithDefaults()
	log := tlog.New(t, "actors")
	system := newActorSystem(log)
	root := system.Root
	pid := root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		p := newPartitionActor(0, openFake(part), &cfg, NewStats(nil), log, nil, nil)
		p.bodies = &bodySource{fetches: make(chan struct{}, 1), timeout: 200 * time.Millisecond}
		return p
	}))
	t.Cleanup(func() {
		_ = root.PoisonFuture(pid).Wait()
		system.Shutdown()
	})
	byRef := func(id string) *pb.Deliver {
		d := deliverMsg(id, ann, ann, nil)
		d.BodyRef = &pb.BodyRef{Origin: "192.0.2.1:9", QueueId: id, Size: 300 << 10, Crc32C: 1}
		return d
	}
	start := time.Now()
	r := only(t, deliver(t, root, pid, byRef("Q2")))
	if r.GetCode() != 250 || !r.GetDuplicate() || r.GetMessageId() == "" || time.Since(start) > 150*time.Millisecond {
		t.Fatalf("a repeated delivery: %v after %v; want 250, a duplicate, at once", r, time.Since(start))
	}
	r = only(t, deliver(t, root, pid, byRef("Q3")))
	if r.GetCode() != 451 || r.GetDamaged() != "" || len(part.Stored(ann)) != 1 {
		t.Fatalf("a new delivery whose body cannot be fetched: %v, %d stored; want 451", r, len(part.Stored(ann)))
	}
}

// On the node of the queue, a mailbox that cannot link the queue's file
// (here a fake partition; in production another filesystem) gets a copy
// made off the actor; a queued file that is damaged is found by that copy
// (which checks it as it reads), nothing is stored, and the queue holds it.
func TestLocalDeliveryOfAFileBody(t *testing.T) {
	const ann = "ann@example.test"
	q, err := storage.OpenQueue(t.TempDir(), storage.Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	s := startSystem(t, testConfig(), Deps{Queue: q, OpenPartition: openFake(part)})

	send := func(marker string, damage bool) string {
		w, err := s.Enqueuer().NewBody()
		if err != nil {
			t.Fatal(err)
		}
		body := largeBody(marker, 400<<10)
		w.Write(body)
		b, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if damage {
			_, fb, _ := storage.BodyFile(b)
			f, err := os.OpenFile(fb.Path(), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("DAMAGE"), 1000)
			f.Close()
		}
		env := newEnvelope("sender@remote.example", ann)
		if err := s.Enqueuer().Enqueue(testCtx(t), &mail.Message{Envelope: env, Body: b}); err != nil {
			t.Fatal(err)
		}
		return env.ID
	}
	send("copied", false)
	part.Wait(t, func() bool { return len(part.Stored(ann)) == 1 }, "the message is stored")
	if got := part.Stored(ann)[0].Raw; !bytes.Equal(got, largeBody("copied", 400<<10)) {
		t.Fatalf("stored %d bytes", len(got))
	}
	id := send("damaged", true)
	wait.For(t, waitTimeout, func() bool {
		e := queued(t, s, id)
		return e != nil && strings.Contains(e.Damaged, "CRC-32C mismatch")
	}, "the damaged message is held as damaged")
	if n := len(part.Stored(ann)); n != 1 {
		t.Fatalf("%d messages stored; the damaged one must not be", n)
	}
}
