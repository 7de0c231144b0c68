package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// The partitions share PartitionsMemTableBudget: 16 partitions get 4 MiB
// memtables, 4 or fewer the default 8 MiB, and never less than 4 MiB.
func TestPartitionMemTableSizeSharesTheBudget(t *testing.T) {
	for n, want := range map[int]int64{0: 8 << 20, 1: 8 << 20, 4: 8 << 20, 8: 8 << 20, 16: 4 << 20, 64: 4 << 20, 1024: 4 << 20} {
		if got := PartitionMemTableSize(n); got != want {
			t.Errorf("PartitionMemTableSize(%d) = %d MiB, want %d MiB", n, got>>20, want>>20)
		}
	}
}

// A partition with the smallest memtable PartitionMemTableSize gives still
// takes the largest batches the folder operations write: a MOVE, a STORE
// and an EXPUNGE of 1,200 messages with summaries near the inline
// threshold, in chunks of opChunk, each within badger's transaction limit
// of 15% of the memtable.
func TestFolderOperationsFitTheSmallestPartitionMemtable(t *testing.T) {
	ctx := context.Background()
	s, err := NewAccountStore(filepath.Join(t.TempDir(), "accounts"), testPartitions, Options{MemTableSize: PartitionMemTableSize(1 << 10)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	p, err := s.Open(1)
	if err != nil {
		t.Fatal(err)
	}
	acct := addrIn(1, testPartitions, 0, "memtable")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	const n = 1200
	long := strings.Repeat("word ", 40)
	for i := range n {
		raw := fmt.Sprintf("From: \"Sender %d %s\" <sender%d@example.net>\r\nTo: \"Reader %s\" <reader@example.test>\r\nSubject: message %d %s\r\nMessage-ID: <%d.%s@example.net>\r\n\r\nbody %d\r\n",
			i, long[:60], i, long[:60], i, long[:100], i, strings.Repeat("x", 40), i)
		if _, err := p.Append(ctx, acct, AppendRequest{Raw: []byte(raw)}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	inbox, _ := p.Folder(acct, Inbox)
	arch, _ := p.Folder(acct, "Archive")
	uids := make([]uint32, n)
	for i := range uids {
		uids[i] = uint32(i + 1)
	}
	_, d, err := p.StoreFlags(ctx, acct, inbox.ID, uids, FlagsAdd, []string{`\Seen`, `\Deleted`, "$Label1", "$Label2"})
	if err != nil {
		t.Fatalf("STORE of %d messages: %v", n, err)
	}
	durable(t, d)
	res, d, err := p.CopyMessages(ctx, acct, inbox.ID, uids, arch.ID, true, 0)
	if err != nil {
		t.Fatalf("MOVE of %d messages: %v", n, err)
	}
	durable(t, d)
	if len(res.Dest) != n {
		t.Fatalf("MOVE gave %d new UIDs, want %d", len(res.Dest), n)
	}
	gone, d, err := p.Expunge(ctx, acct, arch.ID, res.Dest)
	if err != nil {
		t.Fatalf("EXPUNGE of %d messages: %v", n, err)
	}
	durable(t, d)
	if len(gone) != n {
		t.Fatalf("EXPUNGE removed %d, want %d", len(gone), n)
	}
}
