package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/summary"
)

func durable(t *testing.T, d <-chan error) {
	t.Helper()
	if d == nil {
		return
	}
	if err := <-d; err != nil {
		t.Fatal(err)
	}
}

func newModelAccount(t *testing.T) (*AccountStore, *Partition, string) {
	t.Helper()
	s, p := openTestPartition(t, 1)
	acct := addrIn(1, testPartitions, 0, "imap")
	if err := p.CreateAccount(context.Background(), Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	return s, p, acct
}

func uidsOf(es []Entry) []uint32 {
	var out []uint32
	for _, e := range es {
		out = append(out, e.UID)
	}
	return out
}

func TestNewAccountHasInboxAndSpecialUseFolders(t *testing.T) {
	_, p, acct := newModelAccount(t)
	fs, err := p.Folders(acct)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	validities := map[uint32]bool{}
	for _, f := range fs {
		got[f.Name] = f.SpecialUse
		validities[f.UIDValidity] = true
		if f.UIDNext != 1 || !f.Subscribed {
			t.Errorf("%s: UIDNEXT %d, subscribed %v", f.Name, f.UIDNext, f.Subscribed)
		}
	}
	want := map[string]string{Inbox: "", "Sent": `\Sent`, "Drafts": `\Drafts`, "Trash": `\Trash`, "Junk": `\Junk`, "Archive": `\Archive`}
	if fmt.Sprint(got) != fmt.Sprint(want) || fs[0].Name != Inbox {
		t.Fatalf("folders %v, want %v with INBOX first", got, want)
	}
	if len(validities) != len(fs) {
		t.Errorf("UIDVALIDITY values repeat: %v", validities)
	}
}

func TestUIDsIncreaseAndAreNeverReused(t *testing.T) {
	ctx := context.Background()
	_, p, acct := newModelAccount(t)
	inbox, _ := p.Folder(acct, Inbox)
	var uids []uint32
	for i := 0; i < 5; i++ {
		res, err := p.Append(ctx, acct, AppendRequest{Raw: fmt.Appendf(nil, "Subject: m%d\r\n\r\nbody\r\n", i)})
		if err != nil {
			t.Fatal(err)
		}
		if res.UIDValidity != inbox.UIDValidity {
			t.Fatalf("UIDVALIDITY %d, the folder's %d", res.UIDValidity, inbox.UIDValidity)
		}
		uids = append(uids, res.UID)
	}
	if fmt.Sprint(uids) != "[1 2 3 4 5]" {
		t.Fatalf("UIDs %v", uids)
	}
	before, _ := p.Folder(acct, Inbox)
	es, d, err := p.StoreFlags(ctx, acct, inbox.ID, []uint32{4, 5}, FlagsAdd, []string{`\deleted`, "$Label1"})
	if err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	if len(es) != 2 || es[0].Flags[0] != `\Deleted` || es[0].ModSeq <= before.ModSeq || es[1].ModSeq <= es[0].ModSeq {
		t.Fatalf("stored %+v (folder modseq before %d)", es, before.ModSeq)
	}
	gone, d, err := p.Expunge(ctx, acct, inbox.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	if fmt.Sprint(gone) != "[4 5]" {
		t.Fatalf("expunged %v", gone)
	}
	res, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("Subject: after\r\n\r\nx\r\n")})
	if err != nil || res.UID != 6 {
		t.Fatalf("the next append got UID %d (%v), want 6: UIDs are never reused", res.UID, err)
	}
	after, _ := p.Folder(acct, Inbox)
	if after.UIDNext != 7 || after.Messages != 4 || after.Unseen != 4 || after.ModSeq <= es[1].ModSeq {
		t.Fatalf("folder after: %+v", after)
	}
	// Unchanged flags keep their MODSEQ.
	es2, _, _ := p.StoreFlags(ctx, acct, inbox.ID, []uint32{1}, FlagsRemove, []string{`\Flagged`})
	e1, _ := p.FolderEntries(acct, inbox.ID)
	if len(es2) != 1 || es2[0].ModSeq != e1[0].ModSeq {
		t.Fatalf("a no-op store changed modseq: %+v vs %+v", es2, e1[0])
	}
}

func TestCopyAndMoveKeepFlagsAndGiveNewUIDs(t *testing.T) {
	ctx := context.Background()
	_, p, acct := newModelAccount(t)
	big := append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte("y"), 100<<10)...)
	for _, raw := range [][]byte{[]byte("Subject: a\r\n\r\na\r\n"), big, []byte("Subject: c\r\n\r\nc\r\n")} {
		if _, err := p.Append(ctx, acct, AppendRequest{Raw: raw, Flags: []string{`\Seen`}}); err != nil {
			t.Fatal(err)
		}
	}
	inbox, _ := p.Folder(acct, Inbox)
	arch, _ := p.Folder(acct, "Archive")
	res, d, err := p.CopyMessages(ctx, acct, inbox.ID, []uint32{2, 1}, arch.ID, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	if res.UIDValidity != arch.UIDValidity || fmt.Sprint(res.Source, res.Dest) != "[1 2] [1 2]" {
		t.Fatalf("copy: %+v", res)
	}
	used, n, _ := p.Usage(acct)
	if n != 5 {
		t.Fatalf("%d messages after the copy, want 5", n)
	}
	trash, _ := p.Folder(acct, "Trash")
	res, d, err = p.CopyMessages(ctx, acct, inbox.ID, []uint32{3}, trash.ID, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	if fmt.Sprint(res.Dest) != "[1]" {
		t.Fatalf("move: %+v", res)
	}
	if es, _ := p.FolderEntries(acct, inbox.ID); fmt.Sprint(uidsOf(es)) != "[1 2]" {
		t.Fatalf("INBOX after the move: %v", uidsOf(es))
	}
	if used2, n2, _ := p.Usage(acct); n2 != 5 || used2 != used {
		t.Fatalf("a move changed the usage: %d/%d -> %d/%d", used, n, used2, n2)
	}
	ms, _ := p.Messages(acct, "Trash")
	if len(ms) != 1 || ms[0].ID != "3" || !slices.Contains(ms[0].Flags, `\Seen`) {
		t.Fatalf("Trash: %+v (a moved message keeps its id and flags)", ms)
	}
	// The copy of the big message shares its file and reads back whole.
	es, _ := p.FolderEntries(acct, arch.ID)
	raw, err := p.Raw(acct, fmt.Sprint(es[1].ID))
	if err != nil || !bytes.Equal(raw, big) {
		t.Fatalf("the copy of the big message: %d bytes, %v", len(raw), err)
	}
	// Deleting the original leaves the copy readable.
	if err := p.DeleteMessage(ctx, acct, "2"); err != nil {
		t.Fatal(err)
	}
	if raw, err := p.Raw(acct, fmt.Sprint(es[1].ID)); err != nil || !bytes.Equal(raw, big) {
		t.Fatalf("the copy after the original was deleted: %d bytes, %v", len(raw), err)
	}
	// Over quota.
	if _, _, err := p.CopyMessages(ctx, acct, arch.ID, []uint32{2}, inbox.ID, false, used-1); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("copy over quota: %v", err)
	}
}

func TestRenameAndDeleteFolders(t *testing.T) {
	ctx := context.Background()
	_, p, acct := newModelAccount(t)
	for _, n := range []string{"Work", "Work/Projects", "Work/Projects/X"} {
		_, d, err := p.CreateFolder(ctx, acct, n, "")
		if err != nil {
			t.Fatal(err)
		}
		durable(t, d)
	}
	if _, _, err := p.CreateFolder(ctx, acct, "work/", ""); !errors.Is(err, mail.ErrInvalid) {
		t.Fatalf("a name with an empty level: %v", err)
	}
	if _, _, err := p.CreateFolder(ctx, acct, "Work", ""); !errors.Is(err, mail.ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	if _, err := p.Append(ctx, acct, AppendRequest{Folder: "Work/Projects", Raw: []byte("Subject: p\r\n\r\np\r\n"), MustExist: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(ctx, acct, AppendRequest{Folder: "Nowhere", Raw: []byte("x"), MustExist: true}); !errors.Is(err, ErrNoFolder) || !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("append to a missing folder: %v", err)
	}
	before, _ := p.Folder(acct, "Work/Projects")
	d, err := p.RenameFolder(ctx, acct, "Work", "Job")
	if err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	after, err := p.Folder(acct, "Job/Projects")
	if err != nil || after.UIDValidity != before.UIDValidity || after.Messages != 1 {
		t.Fatalf("renamed child: %+v, %v (before %+v)", after, err, before)
	}
	if _, err := p.Folder(acct, "Job/Projects/X"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Folder(acct, "Work"); !errors.Is(err, ErrNoFolder) {
		t.Fatalf("the old name: %v", err)
	}
	if _, err := p.RenameFolder(ctx, acct, "Job", "Job/Sub"); !errors.Is(err, ErrCannot) {
		t.Fatalf("rename under itself: %v", err)
	}
	// RFC 9051 §6.3.6: renaming INBOX moves its messages, INBOX stays.
	if _, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("Subject: i\r\n\r\ni\r\n")}); err != nil {
		t.Fatal(err)
	}
	if d, err = p.RenameFolder(ctx, acct, "inbox", "Old"); err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	in, _ := p.Folder(acct, Inbox)
	old, _ := p.Folder(acct, "Old")
	if in.Messages != 0 || old.Messages != 1 {
		t.Fatalf("after renaming INBOX: INBOX %d, Old %d messages", in.Messages, old.Messages)
	}
	if d, err = p.DeleteFolder(ctx, acct, "Job/Projects"); err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	if _, n, _ := p.Usage(acct); n != 1 {
		t.Fatalf("%d messages after deleting a folder with one, want 1", n)
	}
	if _, err := p.DeleteFolder(ctx, acct, Inbox); !errors.Is(err, ErrCannot) {
		t.Fatalf("delete INBOX: %v", err)
	}
	// A folder made again has another UIDVALIDITY.
	f, d, err := p.CreateFolder(ctx, acct, "Job/Projects", "")
	if err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	if f.UIDValidity == before.UIDValidity {
		t.Fatal("a folder created again kept its UIDVALIDITY")
	}
}

// TestOldMailboxesAreMigratedOnOpen writes an account as the code before
// the folder model did (a 24-byte state, metadata with a folder name and
// flags, no index, no summary) and opens the partition.
func TestOldMailboxesAreMigratedOnOpen(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := NewAccountStore(root, testPartitions, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Open(1)
	if err != nil {
		t.Fatal(err)
	}
	acct := addrIn(1, testPartitions, 0, "old")
	v, _ := encodeAccount(Account{Address: acct, Created: time.Now()})
	var b Batch
	b.Set(key(prefixAccount, acct), v)
	msgs := []struct {
		folder string
		flags  []string
		raw    string
	}{
		{"INBOX", []string{`\Seen`}, "From: a@example.test\r\nSubject: one\r\n\r\n1\r\n"},
		{"Lists", nil, "Subject: two\r\n\r\n2\r\n"},
		{"INBOX", nil, "Subject: three\r\n\r\n3\r\n"},
	}
	var bytesUsed int64
	for i, m := range msgs {
		id := uint64(i + 1)
		meta, _ := json.Marshal(messageRecord{Folder: m.folder, Flags: m.flags, Size: int64(len(m.raw)), Received: time.Now().UTC()})
		b.Set(messageKey(prefixMeta, acct, id), meta)
		b.Set(messageKey(prefixRaw, acct, id), frame([]byte(m.raw)))
		bytesUsed += int64(len(m.raw))
	}
	old := mailboxState{next: 4, bytes: bytesUsed, count: 3}.encode()[:24]
	b.Set(key(prefixState, acct), old)
	if err := p.db.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	s, p = reopenPartition(t, s, p, root, 1)
	fs, err := p.Folders(acct)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Folder{}
	for _, f := range fs {
		byName[f.Name] = f
	}
	if _, ok := byName["Sent"]; !ok || byName["Lists"].Messages != 1 || byName[Inbox].Messages != 2 || byName[Inbox].Unseen != 1 {
		t.Fatalf("folders after migration: %+v", fs)
	}
	es, _ := p.FolderEntries(acct, byName[Inbox].ID)
	if fmt.Sprint(uidsOf(es)) != "[1 2]" || es[0].ID != 1 || es[1].ID != 3 || !slices.Contains(es[0].Flags, `\Seen`) {
		t.Fatalf("INBOX index: %+v", es)
	}
	sum, err := p.Summary(acct, 1)
	if err != nil {
		t.Fatal(err)
	}
	sm, _ := summary.Decode(sum)
	if sm.Subject() != "one" || sm.From() != "a@example.test" {
		t.Fatalf("migrated summary: %+v", sm.Envelope)
	}
	res, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("Subject: new\r\n\r\n")})
	if err != nil || res.ID != "4" || res.UID != 3 {
		t.Fatalf("append after migration: %+v %v", res, err)
	}
	// A second open does nothing more.
	p.Close()
	if p, err = s.Open(1); err != nil {
		t.Fatal(err)
	}
	es2, _ := p.FolderEntries(acct, byName[Inbox].ID)
	if fmt.Sprint(uidsOf(es2)) != "[1 2 3]" {
		t.Fatalf("INBOX after reopening: %v", uidsOf(es2))
	}
}

// TestMessageMetaReadsSizesDatesAndSummaries: MessageMeta answers each
// stored id's size, internal date and (when asked) summary, in the order
// asked, and skips ids that do not exist.
func TestMessageMetaReadsSizesDatesAndSummaries(t *testing.T) {
	ctx := context.Background()
	_, p, acct := newModelAccount(t)
	var ids []uint64
	raws := []string{"Subject: one\r\n\r\nbody\r\n", "Subject: two\r\nFrom: a@b.test\r\n\r\nlonger body\r\n"}
	for _, raw := range raws {
		res, err := p.Append(ctx, acct, AppendRequest{Raw: []byte(raw)})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := strconv.ParseUint(res.ID, 10, 64)
		ids = append(ids, id)
	}
	metas, err := p.MessageMeta(acct, []uint64{ids[1], 999, ids[0]}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 2 || metas[0].ID != ids[1] || metas[1].ID != ids[0] {
		t.Fatalf("MessageMeta: %+v", metas)
	}
	for i, raw := range []string{raws[1], raws[0]} {
		m := metas[i]
		if m.Size != int64(len(raw)) || m.Received.IsZero() || time.Since(m.Received) > time.Minute {
			t.Errorf("message %d: size %d (want %d), received %v", m.ID, m.Size, len(raw), m.Received)
		}
		if want, _ := p.Summary(acct, m.ID); len(m.Summary) == 0 || string(m.Summary) != string(want) {
			t.Errorf("message %d: summary %q, want %q", m.ID, m.Summary, want)
		}
	}
	if metas, err := p.MessageMeta(acct, ids, false); err != nil || len(metas) != 2 || metas[0].Summary != nil {
		t.Errorf("without summaries: %+v, %v", metas, err)
	}
}

// TestMessageSummariesInTheOrderAsked: MessageSummaries answers each id's
// summary where MessageMeta would, in the order asked, nil for an id that
// does not exist.
func TestMessageSummariesInTheOrderAsked(t *testing.T) {
	ctx := context.Background()
	_, p, acct := newModelAccount(t)
	var ids []uint64
	for _, raw := range []string{"Subject: one\r\n\r\nbody\r\n", "Subject: two\r\n\r\nbody\r\n"} {
		res, err := p.Append(ctx, acct, AppendRequest{Raw: []byte(raw)})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := strconv.ParseUint(res.ID, 10, 64)
		ids = append(ids, id)
	}
	sums, err := p.MessageSummaries(acct, []uint64{ids[1], 999, ids[0]})
	if err != nil || len(sums) != 3 || sums[1] != nil {
		t.Fatalf("MessageSummaries: %q, %v", sums, err)
	}
	for i, id := range []uint64{ids[1], ids[0]} {
		want, _ := p.Summary(acct, id)
		if got := sums[i*2]; len(got) == 0 || string(got) != string(want) {
			t.Errorf("message %d: summary %q, want %q", id, got, want)
		}
	}
}

// TestMessageSummariesOfARange: a dense, ascending set of ids (a FETCH of
// a range, read by one pass of an iterator) answers what the lookups of
// each id answer, nil for ids not stored, whatever is stored around them.
func TestMessageSummariesOfARange(t *testing.T) {
	ctx := context.Background()
	_, p, acct := newModelAccount(t)
	var ids []uint64
	for i := range 30 {
		res, err := p.Append(ctx, acct, AppendRequest{Raw: []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := strconv.ParseUint(res.ID, 10, 64)
		ids = append(ids, id)
	}
	// ids 3..24 without 10 and 11, and one past the last stored.
	var ask []uint64
	for i := 3; i < 25; i++ {
		if i != 10 && i != 11 {
			ask = append(ask, ids[i])
		}
	}
	ask = append(ask, ids[29]+1)
	if !dense(ask) {
		t.Fatalf("the test's ids are not dense: %v", ask)
	}
	got, err := p.MessageSummaries(acct, ask)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ask {
		want, err := p.Summary(acct, id)
		if id > ids[29] {
			if got[i] != nil {
				t.Errorf("id %d not stored: %q", id, got[i])
			}
			continue
		}
		if err != nil || len(got[i]) == 0 || string(got[i]) != string(want) {
			t.Errorf("id %d: %q, want %q (%v)", id, got[i], want, err)
		}
	}
}

// TestCRLFSizeIsStoredAndCopied: a message appended with bare LF line ends
// and no last line end has its size with CRLF line ends recorded (what
// POP3 sends), and a copy keeps it; one with CRLF only has its size.
func TestCRLFSizeIsStoredAndCopied(t *testing.T) {
	ctx := context.Background()
	_, p, acct := newModelAccount(t)
	lf := "Subject: lf\n\nline one\nline two"
	a, err := p.Append(ctx, acct, AppendRequest{Raw: []byte(lf)})
	if err != nil {
		t.Fatal(err)
	}
	crlf := "Subject: crlf\r\n\r\nbody\r\n"
	b, err := p.Append(ctx, acct, AppendRequest{Raw: []byte(crlf)})
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := p.Folder(acct, Inbox)
	archive, _ := p.Folder(acct, "Archive")
	res, d, err := p.CopyMessages(ctx, acct, inbox.ID, []uint32{a.UID}, archive.ID, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	es, err := p.FolderEntries(acct, archive.ID)
	if err != nil || len(es) != 1 || es[0].UID != res.Dest[0] {
		t.Fatalf("archive %v, %v", es, err)
	}
	var ids []uint64
	for _, id := range []string{a.ID, b.ID} {
		var n uint64
		fmt.Sscan(id, &n)
		ids = append(ids, n)
	}
	ids = append(ids, es[0].ID)
	metas, err := p.MessageMeta(acct, ids, false)
	if err != nil || len(metas) != 3 {
		t.Fatalf("meta %v, %v", metas, err)
	}
	wantLF := int64(len(lf) + 3 + 2) // three bare LFs, a line end added
	for i, want := range []int64{wantLF, int64(len(crlf)), wantLF} {
		if metas[i].CRLFSize != want {
			t.Errorf("message %d: CRLF size %d, want %d (size %d)", metas[i].ID, metas[i].CRLFSize, want, metas[i].Size)
		}
	}
}
