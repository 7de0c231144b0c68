package actors

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// Mailbox operations on a store whose disk has no byte left: an APPEND
// is refused at once and a STORE when its batch is written, both with
// the store's temporary ErrNoSpace (kept across the channel: NO_SPACE,
// not "unavailable"); the refused STORE, which the folder's view in the
// account actor had taken already, is not seen by a SYNC after it (the
// view is read again); once space is back the same STORE is durable
// and seen.
func TestMailboxOpsOnAFullStore(t *testing.T) {
	var avail atomic.Int64
	avail.Store(1 << 40)
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	later := func() { mu.Lock(); now = now.Add(time.Second); mu.Unlock() } // past the statfs cache
	space, err := storage.NewSpace(t.TempDir(), storage.SpaceConfig{Store: "accounts", Now: clock,
		Statfs: func() (int64, int64, error) { return avail.Load(), 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { space.Close() })
	store, err := storage.NewAccountStore(t.TempDir(), 1, storage.Options{ValueLogGCInterval: -1, Space: space})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	s := startSystem(t, testConfig(), Deps{OpenPartition: func(id int) (PartitionData, error) { return store.Open(id) }})
	const acct = "ann@example.test"
	if _, err := s.CreateAccount(testCtx(t), acct, "", 0); err != nil {
		t.Fatal(err)
	}
	op := func(o *pb.MailboxOp) (*pb.MailboxReply, error) {
		o.Account = acct
		return s.Mailbox(testCtx(t), o)
	}
	appendOne := func() error {
		_, err := op(&pb.MailboxOp{Kind: pb.MailboxOp_APPEND, Folder: "INBOX", Body: []byte("Subject: x\r\n\r\nx\r\n")})
		return err
	}
	if err := appendOne(); err != nil {
		t.Fatal(err)
	}
	sel, err := op(&pb.MailboxOp{Kind: pb.MailboxOp_SELECT, Folder: "INBOX"})
	if err != nil || len(sel.Entries) != 1 {
		t.Fatalf("SELECT: %v, %v", sel, err)
	}
	fid, uid, modseq := sel.Folder.Id, sel.Entries[0].Uid, sel.Modseq
	noSpace := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, mail.ErrNoSpace) || !mail.IsTemporary(err) {
			t.Fatalf("%s on the full store: %v, want a temporary mail.ErrNoSpace", what, err)
		}
	}
	seenSince := func(since uint64) bool {
		t.Helper()
		r, err := op(&pb.MailboxOp{Kind: pb.MailboxOp_SYNC, FolderId: fid, SinceModseq: since})
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(r.Entries, func(e *pb.MessageEntry) bool {
			return e.Uid == uid && slices.Contains(e.Flags, `\Seen`)
		})
	}
	store1 := func() error {
		_, err := op(&pb.MailboxOp{Kind: pb.MailboxOp_STORE, FolderId: fid, Uids: []uint32{uid},
			StoreOp: int32(storage.FlagsAdd), Flags: []string{`\Seen`}})
		return err
	}

	avail.Store(0)
	later()
	noSpace("APPEND", appendOne())
	noSpace("STORE", store1())
	if seenSince(modseq) {
		t.Fatal("SYNC after the refused STORE shows its flag")
	}

	avail.Store(1 << 40)
	later()
	if err := store1(); err != nil {
		t.Fatalf("STORE once space is back: %v", err)
	}
	if !seenSince(modseq) {
		t.Fatal("SYNC after the STORE does not show its flag")
	}
	if err := appendOne(); err != nil {
		t.Fatalf("APPEND once space is back: %v", err)
	}
}
