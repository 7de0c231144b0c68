package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// The repairs of records that no damage of badger's files produces on
// purpose (an envelope that does not decode, a body without an envelope,
// metadata that does not decode beside intact bytes, a dedup record of the
// wrong size), written directly.
func TestCheckRepairsRecords(t *testing.T) {
	ctx := context.Background()
	qdir := t.TempDir()
	q, err := OpenQueue(qdir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	b.Set(key(prefixEnvelope, "E1"), []byte(`{"id":"E1","rcpts":[`))
	b.Set(key(prefixBody, "E1"), frame([]byte("body of E1")))
	b.Set(key(prefixBody, "ORPHAN"), frame([]byte("body without envelope")))
	if err := q.db.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	r := CheckQueue(qdir, true, Options{})
	if r.Err != nil || len(r.Damaged) != 2 || r.Damaged[0].Key != "e/E1" || !strings.HasPrefix(r.Damaged[0].Action, "removed with its body") ||
		r.Damaged[1].Key != "b/ORPHAN" || r.Damaged[1].Action != "removed" {
		t.Fatalf("CheckQueue --repair = %+v", r)
	}
	if r := CheckQueue(qdir, false, Options{}); !r.OK() || r.Messages != 0 {
		t.Fatalf("after the repair: %+v", r)
	}

	root := t.TempDir()
	s, err := NewAccountStore(root, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	const ann = "ann@example.test"
	if err := p.CreateAccount(ctx, Account{Address: ann}); err != nil {
		t.Fatal(err)
	}
	raw := []byte("Subject: kept\r\n\r\nits metadata is lost\r\n")
	if _, err := p.Append(ctx, ann, AppendRequest{Raw: raw, DedupKey: "Q1/ann", Folder: "Archive"}); err != nil {
		t.Fatal(err)
	}
	b = Batch{}
	b.Set(messageKey(prefixMeta, ann, 1), []byte(`{"folder":`))
	b.Set(dedupKey(ann, "Q2/ann"), []byte{1, 2, 3})
	if err := p.db.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	reports, err := CheckAccountStore(root, true, Options{})
	if err != nil || len(reports) != 1 {
		t.Fatalf("CheckAccountStore = %v, %v", reports, err)
	}
	r = reports[0]
	if r.Err != nil || len(r.Damaged) != 2 || !strings.HasPrefix(r.Damaged[0].Key, "d/ann@example.test") ||
		r.Damaged[1].Key != `m/ann@example.test\x00#1` || !strings.HasPrefix(r.Damaged[1].Action, "new metadata") {
		t.Fatalf("CheckAccountStore --repair = %+v", r)
	}
	s, err = NewAccountStore(root, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p, err = s.Open(0); err != nil {
		t.Fatal(err)
	}
	ms, err := p.Messages(ann, "")
	if err != nil || len(ms) != 1 || ms[0].Folder != Inbox || ms[0].Size != int64(len(raw)) {
		t.Fatalf("the salvaged message: %+v, %v", ms, err)
	}
	if got, err := p.Raw(ann, "1"); err != nil || string(got) != string(raw) {
		t.Fatalf("its bytes: %q, %v", got, err)
	}
	if r := checkPartition(s, 0, false); !errors.Is(r.Err, ErrLocked) {
		t.Fatalf("a check of an open partition = %+v, want it refused (locked)", r)
	}
}
