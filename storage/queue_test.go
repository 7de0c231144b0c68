package storage

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

func testEnvelope(id string) *mail.Envelope {
	return &mail.Envelope{
		ID:   id,
		From: "sender@example.org",
		Recipients: []*mail.Recipient{
			{Addr: "a@example.test", Account: "a@example.test", State: mail.StatePending},
			{Addr: "b@remote.example", State: mail.StatePending, Notify: []mail.Notify{mail.NotifyFailure}},
		},
		Received: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Source:   mail.SourceSMTP,
		Size:     11,
	}
}

func TestQueueLifecycle(t *testing.T) {
	dir := t.TempDir()
	q, err := OpenQueue(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	ids := []string{mail.NewID(now), mail.NewID(now.Add(time.Millisecond)), mail.NewID(now.Add(2 * time.Millisecond))}
	bigBody := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB: in the value log
	bodies := [][]byte{[]byte("hello world"), bigBody, []byte("third")}
	for i, id := range ids {
		if err := q.Put(ctx, &mail.Message{Envelope: testEnvelope(id), Body: mail.BytesBody(bodies[i])}); err != nil {
			t.Fatalf("Put %s: %v", id, err)
		}
	}
	env, err := q.Envelope(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(env, testEnvelope(ids[0])) {
		t.Fatalf("Envelope = %+v, want %+v", env, testEnvelope(ids[0]))
	}
	for i, id := range ids {
		body, err := queueBody(q, id)
		if err != nil || !bytes.Equal(body, bodies[i]) {
			t.Fatalf("Body %s: %d bytes, %v", id, len(body), err)
		}
	}

	// Update rewrites the envelope only; later updates win.
	up := testEnvelope(ids[1])
	up.Recipients[0].State = mail.StateDelivered
	up2 := up.Clone()
	up2.Recipients[1].State = mail.StateDeferred
	up2.Recipients[1].Attempts = 1
	c1, c2 := q.Update(up), q.Update(up2)
	if err := <-c1; err != nil {
		t.Fatal(err)
	}
	if err := <-c2; err != nil {
		t.Fatal(err)
	}
	env, err = q.Envelope(ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if env.Recipients[0].State != mail.StateDelivered || env.Recipients[1].Attempts != 1 {
		t.Fatalf("after Update: %+v %+v", env.Recipients[0], env.Recipients[1])
	}
	if body, _ := queueBody(q, ids[1]); !bytes.Equal(body, bigBody) {
		t.Fatal("Update changed the body")
	}

	// Delete removes both parts.
	if err := <-q.Delete(ids[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Envelope(ids[2]); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("Envelope after Delete = %v, want ErrNotFound", err)
	}
	if _, err := queueBody(q, ids[2]); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("Body after Delete = %v, want ErrNotFound", err)
	}
	if err := <-q.Delete(ids[2]); err != nil {
		t.Fatalf("deleting a deleted message: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	// Recovery: Each walks what is left, in id order.
	q, err = OpenQueue(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var got []*mail.Envelope
	if err := q.Each(func(e *mail.Envelope) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[1] {
		t.Fatalf("Each after reopen: %d envelopes %v", len(got), got)
	}
	if got[1].Recipients[1].State != mail.StateDeferred {
		t.Fatal("update lost across reopen")
	}
	if body, err := queueBody(q, ids[1]); err != nil || !bytes.Equal(body, bigBody) {
		t.Fatalf("body lost across reopen: %v", err)
	}
}

func TestQueueRefusesBadInput(t *testing.T) {
	q, err := OpenQueue(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	for _, id := range []string{"", "a/b", "has space", string(make([]byte, 200))} {
		if err := q.Put(ctx, &mail.Message{Envelope: testEnvelope(id), Body: mail.BytesBody([]byte("x"))}); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Put(id %q) = %v, want ErrInvalidID", id, err)
		}
		if err := <-q.Delete(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidID", id, err)
		}
	}
	if err := q.Put(ctx, nil); err == nil {
		t.Error("Put(nil envelope) succeeded")
	}
	if err := <-q.Update(nil); err == nil {
		t.Error("Update(nil) succeeded")
	}
	if _, err := q.Envelope("missing"); !errors.Is(err, mail.ErrNotFound) {
		t.Errorf("Envelope(missing) = %v", err)
	}
}

func TestQueueUsesItsValueThreshold(t *testing.T) {
	q, err := OpenQueue(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if got := q.DB().bdb.Opts().ValueThreshold; got != queueProfile.valueThreshold {
		t.Fatalf("queue ValueThreshold = %d, want %d", got, queueProfile.valueThreshold)
	}
}

// A transfer repeated after an unclear reply is stored once, even after
// the first copy was delivered and deleted.
func TestPutTransferOnce(t *testing.T) {
	q, err := OpenQueue(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	env := &mail.Envelope{ID: "T1", From: "a@x", Recipients: []*mail.Recipient{{Addr: "b@y", State: mail.StatePending}}}
	dup, err := q.PutTransfer(context.Background(), &mail.Message{Envelope: env, Body: mail.BytesBody("body")})
	if err != nil || dup {
		t.Fatalf("first PutTransfer = %v, %v", dup, err)
	}
	if err := <-q.Delete("T1"); err != nil {
		t.Fatal(err)
	}
	dup, err = q.PutTransfer(context.Background(), &mail.Message{Envelope: env, Body: mail.BytesBody("body")})
	if err != nil || !dup {
		t.Fatalf("repeated PutTransfer = %v, %v; want duplicate", dup, err)
	}
	if _, err := q.Envelope("T1"); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("the repeated transfer was stored again: %v", err)
	}
}

// queueBody reads the stored body of id as bytes.
func queueBody(q *QueueStore, id string) ([]byte, error) {
	b, err := q.Body(id)
	if err != nil {
		return nil, err
	}
	return mail.ReadBody(b)
}
