package actors

import (
	"context"
	"strconv"
	"testing"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/storage"
)

// TestReadMetaFromTheCache: the sizes and dates readMeta answers from the
// cache are those read from the store, with the summaries; after a
// message was expunged a read through the cache answers what a read
// without one does.
func TestReadMetaFromTheCache(t *testing.T) {
	ctx := context.Background()
	store, err := storage.NewAccountStore(t.TempDir(), 1, storage.Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	p, err := store.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	const acct = "ann@example.test"
	if err := p.CreateAccount(ctx, storage.Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, raw := range []string{"Subject: one\r\n\r\nbody\r\n", "Subject: two\r\n\r\nlonger body\r\n"} {
		res, err := p.Append(ctx, acct, storage.AppendRequest{Raw: []byte(raw)})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := strconv.ParseUint(res.ID, 10, 64)
		ids = append(ids, id)
	}
	entries := func() []*pb.MessageEntry {
		return []*pb.MessageEntry{{Id: ids[0], Uid: 1}, {Id: ids[1], Uid: 2}}
	}
	var cache metaCache
	first, err := readMeta(p, &cache, acct, entries(), ids, true)
	if err != nil || len(first) != 2 {
		t.Fatalf("first read: %v, %v", first, err)
	}
	if _, found, missing := cache.split(ids); len(missing) != 0 || !found[0] || !found[1] {
		t.Fatalf("not cached: missing %v", missing)
	}
	second, err := readMeta(p, &cache, acct, entries(), ids, true)
	if err != nil || len(second) != 2 {
		t.Fatalf("second read: %v, %v", second, err)
	}
	for i := range first {
		a, b := first[i], second[i]
		if a.Size == 0 || a.Size != b.Size || a.CrlfSize != b.CrlfSize || a.ReceivedUnixNano == 0 ||
			a.ReceivedUnixNano != b.ReceivedUnixNano || len(a.Summary) == 0 || string(a.Summary) != string(b.Summary) {
			t.Fatalf("message %d: read %+v, from the cache %+v", i, a, b)
		}
	}
	fs, err := p.Folders(acct)
	if err != nil {
		t.Fatal(err)
	}
	var inbox uint32
	for _, f := range fs {
		if f.Name == "INBOX" {
			inbox = f.ID
		}
	}
	_, done, err := p.Expunge(ctx, acct, inbox, []uint32{1})
	if err == nil {
		err = <-done
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := readMeta(p, &cache, acct, entries(), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	want, err := readMeta(p, &metaCache{}, acct, entries(), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("after the expunge: through the cache %v, without %v", got, want)
	}
	for i := range got {
		if got[i].Id != want[i].Id || got[i].Size != want[i].Size || string(got[i].Summary) != string(want[i].Summary) {
			t.Fatalf("after the expunge: through the cache %v, without %v", got[i], want[i])
		}
	}
}
