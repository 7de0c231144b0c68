package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/damage"
)

// markedBody is an RFC 5322 message of about size bytes whose text is
// marker repeated: damage.Find locates it in the store's files.
func markedBody(marker string, size int) []byte {
	b := []byte("From: a@example.test\r\nSubject: " + marker + "\r\n\r\n")
	for len(b) < size {
		b = append(b, marker+"\r\n"...)
	}
	return b
}

// queueWith writes one message per body into a new queue in dir and
// closes it; it returns the ids in order.
func queueWith(t *testing.T, dir string, bodies ...[]byte) []string {
	t.Helper()
	q, err := OpenQueue(dir, Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, body := range bodies {
		id := mail.NewID(time.Now().Add(time.Duration(i) * time.Millisecond))
		env := testEnvelope(id)
		env.Size = int64(len(body))
		if err := q.Put(context.Background(), &mail.Message{Envelope: env, Body: mail.BytesBody(body)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func reopenQueue(t *testing.T, dir string) *QueueStore {
	t.Helper()
	q, err := OpenQueue(dir, Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatalf("reopening the damaged queue: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// wantDamaged checks that err says the data is damaged (and that no bytes
// came back with it).
func wantDamaged(t *testing.T, what string, got []byte, err error, says string) {
	t.Helper()
	if !errors.Is(err, ErrDamaged) || got != nil {
		t.Fatalf("%s: %d bytes, %v; want no bytes and an error wrapping ErrDamaged", what, len(got), err)
	}
	if !strings.Contains(err.Error(), says) {
		t.Fatalf("%s: %v; want it to say %q", what, err, says)
	}
}

// A value-log file of the queue truncated or overwritten: badger returns
// empty values for what was there (it only logs the failed read); the
// store's Body answers ErrDamaged for each of those bodies, never an empty
// body, and the bodies before the damage and the envelopes are still read.
func TestQueueBodyInDamagedValueLog(t *testing.T) {
	for _, how := range []string{"truncated", "overwritten"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			first, second := markedBody("first-body", 64<<10), markedBody("damaged-body", 64<<10)
			ids := queueWith(t, dir, first, second)
			if how == "truncated" {
				damage.TruncateValueLog(t, dir, []byte("damaged-body"))
			} else {
				damage.Overwrite(t, dir, ".vlog", []byte("damaged-body"))
			}
			q := reopenQueue(t, dir)
			if got, err := queueBody(q, ids[0]); err != nil || !bytes.Equal(got, first) {
				t.Fatalf("the body before the damage: %d bytes, %v", len(got), err)
			}
			got, err := queueBody(q, ids[1])
			wantDamaged(t, "the damaged body", got, err, ids[1])
			if env, err := q.Envelope(ids[1]); err != nil || env.ID != ids[1] {
				t.Fatalf("the envelope of the damaged message: %v, %v", env, err)
			}
		})
	}
}

// A small body lives in badger's tables, whose blocks badger reads without
// checking their checksums: overwritten bytes come back as they are, with
// the right length. The frame's CRC-32C finds them.
func TestQueueBodyOverwrittenInTable(t *testing.T) {
	dir := t.TempDir()
	body := markedBody("small-body", 300) // below the 1 KiB value-log threshold
	ids := queueWith(t, dir, body)
	damage.Overwrite(t, dir, ".sst", []byte("small-body"))
	q := reopenQueue(t, dir)
	got, err := queueBody(q, ids[0])
	wantDamaged(t, "the overwritten body", got, err, "CRC-32C mismatch")
}

// A queue body stored before frames is read as it was stored, and one
// that badger returns empty or cut is damaged (the envelope's Size says
// how long it was).
func TestQueueReadsBodiesStoredBeforeFrames(t *testing.T) {
	q, err := OpenQueue(t.TempDir(), Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	old := markedBody("old", 2000)
	put := func(id string, size int64, stored []byte) {
		env := testEnvelope(id)
		env.Size = size
		b, err := envelopeBatch(env)
		if err != nil {
			t.Fatal(err)
		}
		b.Set(key(prefixBody, id), stored) // bare, as before frames
		if err := q.db.Commit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	put("OLD1", int64(len(old)), old)
	put("OLD2", int64(len(old)), old[:1000])
	put("OLD3", int64(len(old)), nil)
	if got, err := queueBody(q, "OLD1"); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("old body: %d bytes, %v", len(got), err)
	}
	got, err := queueBody(q, "OLD2")
	wantDamaged(t, "a cut old body", got, err, "unframed body of 1000 bytes")
	got, err = queueBody(q, "OLD3")
	wantDamaged(t, "an empty old body", got, err, "empty value")
}

// An envelope that does not decode does not stop the walk of the queue:
// Each reports it as a damaged envelope and goes on.
func TestQueueEachGoesOnPastDamagedEnvelopes(t *testing.T) {
	q, err := OpenQueue(t.TempDir(), Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	for _, id := range []string{"A1", "A3"} {
		if err := q.Put(ctx, &mail.Message{Envelope: testEnvelope(id), Body: mail.BytesBody("x")}); err != nil {
			t.Fatal(err)
		}
	}
	var b Batch
	b.Set(key(prefixEnvelope, "A2"), []byte(`{"id":"A2","rcpts":[{"ad`))
	if err := q.db.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	var seen []string
	if err := q.Each(func(env *mail.Envelope) error {
		seen = append(seen, env.ID+":"+map[bool]string{true: "damaged", false: "ok"}[env.Damaged != ""])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, " ") != "A1:ok A2:damaged A3:ok" {
		t.Fatalf("Each saw %v", seen)
	}
	if _, err := q.Envelope("A2"); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Envelope of a damaged record: %v, want ErrDamaged", err)
	}
}

// A mailbox message whose bytes were in a damaged value log: Raw answers
// ErrDamaged instead of an empty message; the listing and the usage are
// unchanged (the metadata is intact) and the other messages are read.
func TestMailboxRawInDamagedValueLog(t *testing.T) {
	for _, how := range []string{"truncated", "overwritten"} {
		t.Run(how, func(t *testing.T) {
			root := t.TempDir()
			s, err := NewAccountStore(root, 1, Options{ValueLogGCInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Open(0)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			const ann = "ann@example.test"
			if err := p.CreateAccount(ctx, Account{Address: ann}); err != nil {
				t.Fatal(err)
			}
			first, second := markedBody("kept-message", 8<<10), markedBody("lost-message", 8<<10)
			var ids []string
			for _, raw := range [][]byte{first, second} {
				res, err := p.Append(ctx, ann, AppendRequest{Raw: raw})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, res.ID)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(root, "p0000")
			if how == "truncated" {
				damage.TruncateValueLog(t, dir, []byte("lost-message"))
			} else {
				damage.Overwrite(t, dir, ".vlog", []byte("lost-message"))
			}
			s, err = NewAccountStore(root, 1, Options{ValueLogGCInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if p, err = s.Open(0); err != nil {
				t.Fatalf("reopening: %v", err)
			}
			if got, err := p.Raw(ann, ids[0]); err != nil || !bytes.Equal(got, first) {
				t.Fatalf("the message before the damage: %d bytes, %v", len(got), err)
			}
			got, err := p.Raw(ann, ids[1])
			wantDamaged(t, "the damaged message", got, err, "message "+ids[1]+" of "+ann)
			if ms, err := p.Messages(ann, ""); err != nil || len(ms) != 2 || ms[1].Size != int64(len(second)) {
				t.Fatalf("listing: %+v, %v", ms, err)
			}
		})
	}
}

// A mailbox message stored before frames is read as it was stored; one
// cut short is damaged (its metadata records its size).
func TestMailboxReadsMessagesStoredBeforeFrames(t *testing.T) {
	_, p := openTestPartition(t, 0)
	ctx := context.Background()
	ann := addrIn(0, testPartitions, 0, "ann")
	if err := p.CreateAccount(ctx, Account{Address: ann}); err != nil {
		t.Fatal(err)
	}
	raw := markedBody("old-message", 3000)
	var ids []string
	for range 2 {
		res, err := p.Append(ctx, ann, AppendRequest{Raw: raw})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	var b Batch // rewrite them bare, as before frames; the second cut short
	b.Set(messageKey(prefixRaw, ann, 1), raw)
	b.Set(messageKey(prefixRaw, ann, 2), raw[:100])
	if err := p.db.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Raw(ann, ids[0]); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("old message: %d bytes, %v", len(got), err)
	}
	got, err := p.Raw(ann, ids[1])
	wantDamaged(t, "a cut old message", got, err, fmt.Sprintf("unframed body of 100 bytes, %d recorded", len(raw)))
}
