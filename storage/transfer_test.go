package storage

import (
	"context"
	"errors"
	"testing"

	"github.com/homing-mail/homing/mail"
)

// The origin's transfer decision: none at first; GiveTransfer records the
// member and deletes the copy in the same batch; KeepTransfer leaves the
// copy; both survive a reopen.
func TestTransferOutcome(t *testing.T) {
	dir := t.TempDir()
	q, err := OpenQueue(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"GIVEN", "KEPT"} {
		env := &mail.Envelope{ID: id, From: "a@example.test", Recipients: []*mail.Recipient{{Key: 1, Addr: "b@remote.test"}}, Transfer: true}
		if err := q.Put(ctx, &mail.Message{Envelope: env, Body: mail.BytesBody("body\r\n")}); err != nil {
			t.Fatal(err)
		}
		if o, err := q.TransferOutcome(id); err != nil || o.Decided() {
			t.Fatalf("TransferOutcome(%s) before any decision = %+v, %v", id, o, err)
		}
	}
	if err := <-q.GiveTransfer("GIVEN", "fe1"); err != nil {
		t.Fatal(err)
	}
	if err := <-q.KeepTransfer("KEPT"); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if q, err = OpenQueue(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if o, err := q.TransferOutcome("GIVEN"); err != nil || o != (TransferOutcome{GivenTo: "fe1"}) {
		t.Fatalf("TransferOutcome(GIVEN) = %+v, %v; want given to fe1", o, err)
	}
	if _, err := q.Envelope("GIVEN"); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("the given copy is still queued: %v", err)
	}
	if _, err := q.Body("GIVEN"); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("the given copy's body is still queued: %v", err)
	}
	if o, err := q.TransferOutcome("KEPT"); err != nil || o != (TransferOutcome{Kept: true}) {
		t.Fatalf("TransferOutcome(KEPT) = %+v, %v; want kept", o, err)
	}
	if env, err := q.Envelope("KEPT"); err != nil || !env.Transfer {
		t.Fatalf("the kept copy: %+v, %v; want it queued as it was", env, err)
	}
	if err := <-q.GiveTransfer("X", ""); err == nil {
		t.Fatal("GiveTransfer to nobody accepted")
	}
}
