package actors

import (
	"slices"
	"testing"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/storage"
)

// TestPackedSelectIsTheIndex: SELECT answered packed names the same UIDs
// and flags as SELECT answered with entries, before and after a STORE, an
// APPEND and an EXPUNGE change the folder (the packed index kept for the
// next SELECT is not served stale).
func TestPackedSelectIsTheIndex(t *testing.T) {
	store, err := storage.NewAccountStore(t.TempDir(), 1, storage.Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	s := startSystem(t, testConfig(), Deps{OpenPartition: func(id int) (PartitionData, error) { return store.Open(id) }})
	const acct = "ann@example.test"
	if _, err := s.CreateAccount(testCtx(t), acct, "", 0); err != nil {
		t.Fatal(err)
	}
	op := func(o *pb.MailboxOp) *pb.MailboxReply {
		t.Helper()
		o.Account = acct
		r, err := s.Mailbox(testCtx(t), o)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i := range 5 {
		var flags []string
		if i%2 == 0 {
			flags = []string{`\Seen`}
		}
		op(&pb.MailboxOp{Kind: pb.MailboxOp_APPEND, Folder: "INBOX", Flags: flags, Body: []byte("Subject: x\r\n\r\nx\r\n")})
	}
	same := func(step string) uint32 {
		t.Helper()
		full := op(&pb.MailboxOp{Kind: pb.MailboxOp_SELECT, Folder: "INBOX"})
		for range 2 { // the second from the kept index
			p := op(&pb.MailboxOp{Kind: pb.MailboxOp_SELECT, Folder: "INBOX", Packed: true})
			if len(p.Entries) != 0 || len(p.IndexUids) != len(full.Entries) || len(p.IndexFlags) != len(p.IndexUids) {
				t.Fatalf("%s: packed %d uids %d flags %d entries, entries %d", step, len(p.IndexUids), len(p.IndexFlags), len(p.Entries), len(full.Entries))
			}
			for i, e := range full.Entries {
				if p.IndexUids[i] != e.Uid || !slices.Equal(p.FlagSets[p.IndexFlags[i]].Flags, e.Flags) {
					t.Fatalf("%s: message %d: packed uid %d flags %v, entry %v", step, i, p.IndexUids[i], p.FlagSets[p.IndexFlags[i]].Flags, e)
				}
			}
		}
		return full.Folder.Id
	}
	fid := same("appended")
	op(&pb.MailboxOp{Kind: pb.MailboxOp_STORE, FolderId: fid, Uids: []uint32{2}, StoreOp: int32(storage.FlagsAdd), Flags: []string{`\Flagged`}})
	same("stored")
	op(&pb.MailboxOp{Kind: pb.MailboxOp_APPEND, Folder: "INBOX", Body: []byte("Subject: y\r\n\r\ny\r\n")})
	same("appended again")
	op(&pb.MailboxOp{Kind: pb.MailboxOp_EXPUNGE, FolderId: fid, Uids: []uint32{1, 4}})
	same("expunged")
}
