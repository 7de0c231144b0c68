package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/wait"
)

const testPartitions = 4

// addrIn returns the i-th address of the form <base>N@example.test that
// hashes into partition id.
func addrIn(id, partitions, i int, base string) string {
	for n := 0; ; n++ {
		a := fmt.Sprintf("%s%d@example.test", base, n)
		if mail.PartitionOf(a, partitions) == id {
			if i == 0 {
				return a
			}
			i--
		}
	}
}

func openTestStore(t *testing.T) (*AccountStore, string) {
	t.Helper()
	root := t.TempDir()
	s, err := NewAccountStore(root, testPartitions, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, root
}

func openTestPartition(t *testing.T, id int) (*AccountStore, *Partition) {
	t.Helper()
	s, _ := openTestStore(t)
	p, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// reopenPartition closes p and its store s and opens the store at root
// and its partition id again (closed after the test), so that what is
// read next comes from the files, not from anything p kept.
func reopenPartition(t *testing.T, s *AccountStore, p *Partition, root string, id int) (*AccountStore, *Partition) {
	t.Helper()
	p.Close()
	s.Close()
	s, err := NewAccountStore(root, testPartitions, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	p, err = s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

func TestPartitionCountIsRecordedAndEnforced(t *testing.T) {
	root := t.TempDir()
	s, err := NewAccountStore(root, 4, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Partitions() != 4 {
		t.Fatalf("Partitions = %d", s.Partitions())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "store.json")); err != nil {
		t.Fatalf("store.json: %v", err)
	}
	_, err = NewAccountStore(root, 8, Options{})
	var pce *PartitionCountError
	if !errors.As(err, &pce) || pce.Recorded != 4 || pce.Asked != 8 {
		t.Fatalf("NewAccountStore with another count = %v, want *PartitionCountError{4, 8}", err)
	}
	s, err = NewAccountStore(root, 4, Options{})
	if err != nil {
		t.Fatalf("same count again: %v", err)
	}
	defer s.Close()
	for _, bad := range []int{0, -1, MaxPartitions + 1} {
		if _, err := NewAccountStore(t.TempDir(), bad, Options{}); err == nil {
			t.Errorf("NewAccountStore(%d partitions) succeeded", bad)
		}
	}
	if _, err := s.Open(4); err == nil {
		t.Error("Open(4) of 4 partitions succeeded")
	}
	p, err := s.Open(3)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID() != 3 {
		t.Fatalf("ID = %d", p.ID())
	}
	if _, err := os.Stat(filepath.Join(root, "p0003")); err != nil {
		t.Fatalf("partition directory: %v", err)
	}
}

func TestAccountStoreCloseClosesOpenPartitions(t *testing.T) {
	s, _ := openTestStore(t)
	var ps []*Partition
	for id := range testPartitions {
		p, err := s.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if err := ps[0].Close(); err != nil { // closed by its owner first
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if _, err := p.Accounts(); !errors.Is(err, ErrClosed) {
			t.Fatalf("partition %d after store Close: %v, want ErrClosed", p.ID(), err)
		}
	}
	if _, err := s.Open(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Close = %v, want ErrClosed", err)
	}
}

func TestAccountCRUD(t *testing.T) {
	ctx := context.Background()
	_, p := openTestPartition(t, 1)
	addr := addrIn(1, testPartitions, 0, "User")
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	a := Account{Address: addr, PasswordHash: "$argon2id$x", QuotaBytes: 1000, Created: created}
	if err := p.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	lower := a
	lower.Address = mustLower(addr)
	got, err := p.Account(addr)
	if err != nil || !reflect.DeepEqual(got, lower) {
		t.Fatalf("Account = %+v, %v; want %+v", got, err, lower)
	}
	if err := p.CreateAccount(ctx, a); !errors.Is(err, mail.ErrExists) {
		t.Fatalf("second CreateAccount = %v, want ErrExists", err)
	}

	upd := Account{Address: lower.Address, PasswordHash: "$2b$new", QuotaBytes: 5}
	if err := p.UpdateAccount(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, _ = p.Account(lower.Address)
	if got.PasswordHash != "$2b$new" || got.QuotaBytes != 5 || !got.Created.Equal(created) {
		t.Fatalf("after UpdateAccount: %+v", got)
	}
	other := addrIn(1, testPartitions, 1, "user")
	if err := p.UpdateAccount(ctx, Account{Address: other}); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("UpdateAccount(missing) = %v, want ErrNotFound", err)
	}
	if err := p.CreateAccount(ctx, Account{Address: other}); err != nil {
		t.Fatal(err)
	}
	list, err := p.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || !sort.SliceIsSorted(list, func(i, j int) bool { return list[i].Address < list[j].Address }) {
		t.Fatalf("Accounts = %+v, want 2 sorted by address", list)
	}
	if list[0].Created.IsZero() || list[1].Created.IsZero() {
		t.Fatal("CreateAccount left Created zero")
	}

	if _, err := p.Account(addrIn(1, testPartitions, 7, "nobody")); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("Account(missing) = %v", err)
	}
	var wrong *WrongPartitionError
	if err := p.CreateAccount(ctx, Account{Address: addrIn(2, testPartitions, 0, "user")}); !errors.As(err, &wrong) || wrong.Want != 2 {
		t.Fatalf("CreateAccount in the wrong partition = %v, want *WrongPartitionError", err)
	}
	for _, bad := range []string{"", "nodomain", "@x.test", "a@", "a b@x.test", "a\x00@x.test"} {
		if err := p.CreateAccount(ctx, Account{Address: bad}); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("CreateAccount(%q) = %v, want ErrInvalidAddress", bad, err)
		}
	}
}

func mustLower(s string) string { a, _ := normalizeAddress(s); return a }

func TestAliasesAndResolve(t *testing.T) {
	ctx := context.Background()
	_, p := openTestPartition(t, 0)
	acct := addrIn(0, testPartitions, 0, "owner")
	alias := addrIn(0, testPartitions, 0, "alias")
	remoteTarget := addrIn(3, testPartitions, 0, "elsewhere") // in another partition
	alias2 := addrIn(0, testPartitions, 1, "alias")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetAlias(ctx, alias, acct); err != nil {
		t.Fatal(err)
	}
	if err := p.SetAlias(ctx, alias2, remoteTarget); err != nil {
		t.Fatal(err)
	}
	if err := p.SetAlias(ctx, acct, alias); !errors.Is(err, mail.ErrExists) {
		t.Fatalf("alias over an account = %v, want ErrExists", err)
	}
	if err := p.CreateAccount(ctx, Account{Address: alias}); !errors.Is(err, mail.ErrExists) {
		t.Fatalf("account over an alias = %v, want ErrExists", err)
	}
	var wrong *WrongPartitionError
	if err := p.SetAlias(ctx, addrIn(1, testPartitions, 0, "alias"), acct); !errors.As(err, &wrong) {
		t.Fatalf("alias in the wrong partition = %v, want *WrongPartitionError", err)
	}

	aliases, err := p.Aliases()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{alias: acct, alias2: remoteTarget}; !reflect.DeepEqual(aliases, want) {
		t.Fatalf("Aliases = %v, want %v", aliases, want)
	}
	for in, want := range map[string]string{acct: acct, alias: acct, alias2: remoteTarget} {
		got, err := p.Resolve(in)
		if err != nil || got != want {
			t.Errorf("Resolve(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	// Case does not matter.
	upper := []byte(alias)
	upper[0] -= 'a' - 'A'
	if got, err := p.Resolve(string(upper)); err != nil || got != acct {
		t.Errorf("Resolve(%s) = %q, %v", upper, got, err)
	}
	if _, err := p.Resolve(addrIn(0, testPartitions, 0, "stranger")); !errors.Is(err, mail.ErrNoSuchUser) {
		t.Fatalf("Resolve(unknown) = %v, want ErrNoSuchUser", err)
	}

	if err := p.DeleteAlias(ctx, alias); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Resolve(alias); !errors.Is(err, mail.ErrNoSuchUser) {
		t.Fatalf("Resolve(deleted alias) = %v, want ErrNoSuchUser", err)
	}
	if err := p.DeleteAlias(ctx, alias); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("DeleteAlias(deleted) = %v, want ErrNotFound", err)
	}
}

func TestAppendIsIdempotentOnDedupKey(t *testing.T) {
	ctx := context.Background()
	_, p := openTestPartition(t, 2)
	acct := addrIn(2, testPartitions, 0, "rcpt")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	req := AppendRequest{DedupKey: "QUEUEID/" + acct, Raw: []byte("Subject: hi\r\n\r\nbody\r\n")}
	r1, err := p.Append(ctx, acct, req)
	if err != nil || r1.Duplicate {
		t.Fatalf("first Append = %+v, %v", r1, err)
	}
	commits := p.DB().Stats().Commits
	r2, err := p.Append(ctx, acct, req)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Duplicate || r2.ID != r1.ID {
		t.Fatalf("second Append = %+v, want Duplicate with id %s", r2, r1.ID)
	}
	if c := p.DB().Stats().Commits; c != commits {
		t.Fatalf("a duplicate Append wrote (%d commits, was %d)", c, commits)
	}
	msgs, err := p.Messages(acct, "")
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Messages = %+v, %v; want one", msgs, err)
	}
	if bytes, count, _ := p.Usage(acct); count != 1 || bytes != int64(len(req.Raw)) {
		t.Fatalf("Usage = %d bytes, %d messages", bytes, count)
	}
	// Still a duplicate after the user deleted the message.
	if err := p.DeleteMessage(ctx, acct, r1.ID); err != nil {
		t.Fatal(err)
	}
	if r3, err := p.Append(ctx, acct, req); err != nil || !r3.Duplicate || r3.ID != r1.ID {
		t.Fatalf("Append after delete = %+v, %v; want the first id as a duplicate", r3, err)
	}
	// No DedupKey: every append is new.
	req.DedupKey = ""
	a, _ := p.Append(ctx, acct, req)
	b, _ := p.Append(ctx, acct, req)
	if a.ID == b.ID || a.Duplicate || b.Duplicate {
		t.Fatalf("appends without DedupKey: %+v %+v", a, b)
	}
}

func TestConcurrentAppendsToOneAccountGetDistinctIDs(t *testing.T) {
	ctx := context.Background()
	_, p := openTestPartition(t, 0)
	acct := addrIn(0, testPartitions, 0, "busy")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.Append(ctx, acct, AppendRequest{Raw: fmt.Appendf(nil, "message %d", i)})
			if err != nil {
				t.Error(err)
				return
			}
			ids <- r.ID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %s given twice", id)
		}
		seen[id] = true
	}
	if _, count, _ := p.Usage(acct); count != n || len(seen) != n {
		t.Fatalf("count %d, %d ids, want %d", count, len(seen), n)
	}
}

func TestMessagesRawFlagsAndUsage(t *testing.T) {
	ctx := context.Background()
	_, p := openTestPartition(t, 3)
	acct := addrIn(3, testPartitions, 0, "box")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	recv := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	big := bytes.Repeat([]byte("x"), 100<<10)
	reqs := []AppendRequest{
		{Raw: []byte("one"), Received: recv, Flags: []string{`\Seen`}},
		{Folder: "Archive", Raw: big, Received: recv},
		{Folder: "inbox", Raw: []byte("three"), Received: recv},
	}
	var ids []string
	for _, r := range reqs {
		res, err := p.Append(ctx, acct, r)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	if fmt.Sprint(ids) != "[1 2 3]" {
		t.Fatalf("ids = %v, want [1 2 3]", ids)
	}
	all, err := p.Messages(acct, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []MessageInfo{
		// CRLFSize: the octets RETR sends; each lacks a final line end.
		{ID: "1", Folder: Inbox, Size: 3, CRLFSize: 5, Received: recv, Flags: []string{`\Seen`}, UID: 1},
		{ID: "2", Folder: "Archive", Size: int64(len(big)), CRLFSize: int64(len(big)) + 2, Received: recv, UID: 1},
		{ID: "3", Folder: Inbox, Size: 5, CRLFSize: 7, Received: recv, UID: 2},
	}
	for i := range all {
		if len(all[i].Summary) == 0 {
			t.Errorf("message %s has no summary", all[i].ID)
		}
		all[i].Summary = nil
	}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("Messages = %+v\nwant %+v", all, want)
	}
	inbox, _ := p.Messages(acct, "Inbox")
	if len(inbox) != 2 || inbox[0].ID != "1" || inbox[1].ID != "3" {
		t.Fatalf("INBOX = %+v", inbox)
	}
	if raw, err := p.Raw(acct, "2"); err != nil || !bytes.Equal(raw, big) {
		t.Fatalf("Raw(2): %d bytes, %v", len(raw), err)
	}
	for _, id := range []string{"9", "0", "x", "-1", ""} {
		if _, err := p.Raw(acct, id); !errors.Is(err, mail.ErrNotFound) {
			t.Errorf("Raw(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if err := p.SetFlags(ctx, acct, "3", []string{`\Flagged`, `\Seen`}); err != nil {
		t.Fatal(err)
	}
	if m, _ := p.Messages(acct, ""); !reflect.DeepEqual(m[2].Flags, []string{`\Flagged`, `\Seen`}) {
		t.Fatalf("flags after SetFlags: %v", m[2].Flags)
	}
	if err := p.SetFlags(ctx, acct, "9", nil); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("SetFlags(missing) = %v", err)
	}

	bytesUsed, count, err := p.Usage(acct)
	if err != nil || count != 3 || bytesUsed != int64(3+len(big)+5) {
		t.Fatalf("Usage = %d, %d, %v", bytesUsed, count, err)
	}
	if err := p.DeleteMessage(ctx, acct, "2"); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteMessage(ctx, acct, "2"); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("second DeleteMessage = %v, want ErrNotFound", err)
	}
	if _, err := p.Raw(acct, "2"); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("Raw after delete = %v", err)
	}
	if bytesUsed, count, _ = p.Usage(acct); count != 2 || bytesUsed != 8 {
		t.Fatalf("Usage after delete = %d bytes, %d messages; want 8, 2", bytesUsed, count)
	}

	missing := addrIn(3, testPartitions, 0, "ghost")
	if _, err := p.Append(ctx, missing, reqs[0]); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("Append to a missing account = %v, want ErrNotFound", err)
	}
	if _, err := p.Messages(missing, ""); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("Messages of a missing account = %v", err)
	}
	if _, _, err := p.Usage(missing); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("Usage of a missing account = %v", err)
	}
	if _, err := p.Append(ctx, acct, AppendRequest{}); err == nil {
		t.Fatal("Append of an empty message succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Append(cctx, acct, reqs[0]); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a done context = %v", err)
	}
	if _, count, _ := p.Usage(acct); count != 2 {
		t.Fatalf("an Append whose context was done before it began was stored")
	}
}

func TestMessageIDsStayMonotonicAcrossReopen(t *testing.T) {
	ctx := context.Background()
	s, _ := openTestStore(t)
	p, err := s.Open(1)
	if err != nil {
		t.Fatal(err)
	}
	acct := addrIn(1, testPartitions, 0, "mono")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	// Deleting the newest message must not let its id come back.
	if err := p.DeleteMessage(ctx, acct, "3"); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p, err = s.Open(1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("m")})
	if err != nil || r.ID != "4" {
		t.Fatalf("Append after reopen = %+v, %v; want id 4", r, err)
	}
}

// countKeys counts an account's keys of every per-account kind.
func countKeys(t *testing.T, p *Partition, addr string) int {
	t.Helper()
	n := 0
	for _, k := range [][]byte{key(prefixAccount, addr), key(prefixState, addr), key(prefixPurge, addr)} {
		if ok, err := p.db.has(k); err != nil {
			t.Fatal(err)
		} else if ok {
			n++
		}
	}
	for _, prefix := range [][]byte{prefixMeta, prefixRaw, prefixDedup} {
		if err := p.db.scanKeys(accountPrefix(prefix, addr), func([]byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func TestDeleteAccountRemovesEverything(t *testing.T) {
	ctx := context.Background()
	_, p := openTestPartition(t, 0)
	acct := addrIn(0, testPartitions, 0, "leaver")
	// An account whose address extends acct's must be untouched: its keys
	// share acct's bytes as a prefix.
	neighbour := ""
	for n := 0; neighbour == ""; n++ {
		if c := fmt.Sprint(acct, n); mail.PartitionOf(c, testPartitions) == 0 {
			neighbour = c
		}
	}
	for _, a := range []string{acct, neighbour} {
		if err := p.CreateAccount(ctx, Account{Address: a}); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, err := p.Append(ctx, a, AppendRequest{DedupKey: fmt.Sprint("q", i), Raw: bytes.Repeat([]byte("y"), 2000)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := countKeys(t, p, acct); n != 2+3*5 {
		t.Fatalf("%d keys before delete, want %d", n, 2+3*5)
	}
	if err := p.DeleteAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, p, acct); n != 0 {
		t.Fatalf("%d keys of the account left after DeleteAccount", n)
	}
	if _, err := p.Account(acct); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("Account after delete = %v", err)
	}
	if err := p.DeleteAccount(ctx, acct); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("second DeleteAccount = %v, want ErrNotFound", err)
	}
	if m, err := p.Messages(neighbour, ""); err != nil || len(m) != 5 {
		t.Fatalf("neighbour's messages: %d, %v", len(m), err)
	}

	// Re-created, the account starts empty and old dedup keys are gone.
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	if b, c, _ := p.Usage(acct); b != 0 || c != 0 {
		t.Fatalf("usage of the re-created account: %d, %d", b, c)
	}
	r, err := p.Append(ctx, acct, AppendRequest{DedupKey: "q0", Raw: []byte("new")})
	if err != nil || r.Duplicate || r.ID != "1" {
		t.Fatalf("Append to the re-created account = %+v, %v; want a new message 1", r, err)
	}
}

func TestInterruptedPurgeIsFinishedOnOpen(t *testing.T) {
	ctx := context.Background()
	s, _ := openTestStore(t)
	p, err := s.Open(2)
	if err != nil {
		t.Fatal(err)
	}
	acct := addrIn(2, testPartitions, 0, "crash")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	// DeleteAccount's first write, then a "crash" before the purge.
	var b Batch
	b.Delete(key(prefixAccount, acct))
	b.Delete(key(prefixState, acct))
	b.Set(key(prefixPurge, acct), nil)
	if err := p.DB().Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, p, acct); n != 1+2*3 {
		t.Fatalf("%d keys before reopen", n)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p, err = s.Open(2)
	if err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, p, acct); n != 0 {
		t.Fatalf("%d keys left after reopen; the purge was not resumed", n)
	}
}

// A writer whose context ends while its write is being synced gets
// ctx.Err() at once, but the account stays locked until the write is
// committed, so the next writer reads a store that includes it.
func TestCancelledWriteKeepsTheAccountLockedUntilCommitted(t *testing.T) {
	ctx := context.Background()
	_, p := openTestPartition(t, 1)
	acct := addrIn(1, testPartitions, 0, "slow")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	p.db.testHookBeforeWrite = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() {
		_, err := p.Append(cctx, acct, AppendRequest{Raw: []byte("first")})
		first <- err
	}()
	<-entered // the committer holds the first write
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Append = %v, want context.Canceled", err)
	}
	second := make(chan AppendResult, 1)
	go func() {
		r, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("second")})
		if err != nil {
			t.Error(err)
		}
		second <- r
	}()
	// Wait until the second Append either queues behind the lock (right)
	// or has read the store and submitted its write (wrong).
	wait.For(t, 10*time.Second, func() bool {
		return p.locks.holders(acct) == 2 || p.db.Stats().Pending > 0
	}, "the second Append to block or submit")
	close(release)
	r := <-second
	if r.ID != "2" {
		t.Fatalf("second Append got id %s, want 2 (the cancelled write took 1)", r.ID)
	}
	if raw, err := p.Raw(acct, "1"); err != nil || string(raw) != "first" {
		t.Fatalf("the cancelled write: %q, %v", raw, err)
	}
}

// holders returns how many callers hold or wait for key's lock.
func (k *keyedMutex) holders(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e := k.m[key]; e != nil {
		return e.refs
	}
	return 0
}

// Account rules are stored with the account; an auto-reply record written
// with an append is kept per sender (case-insensitively) and goes with the
// account.
func TestAccountRulesAndAutoReplied(t *testing.T) {
	s, err := NewAccountStore(t.TempDir(), 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.CreateAccount(ctx, Account{Address: "ann@x.test", Rules: []byte(`[{"name":"r"}]`)}); err != nil {
		t.Fatal(err)
	}
	a, err := p.Account("ann@x.test")
	if err != nil || string(a.Rules) != `[{"name":"r"}]` {
		t.Fatalf("account rules = %s, %v", a.Rules, err)
	}
	if already, err := p.HasAutoReplied("ann@x.test", "bob@y.test"); err != nil || already {
		t.Fatalf("HasAutoReplied before any reply = %v, %v", already, err)
	}
	if _, err := p.Append(ctx, "ann@x.test", AppendRequest{Raw: []byte("x\r\n"), DedupKey: "q1/ann@x.test",
		AutoReplied: []string{"Bob@Y.test"}, AutoReplyTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if already, err := p.HasAutoReplied("ann@x.test", "bob@y.test"); err != nil || !already {
		t.Fatalf("HasAutoReplied after the append = %v, %v; want true", already, err)
	}
	if already, _ := p.HasAutoReplied("ann@x.test", "carol@y.test"); already {
		t.Fatal("HasAutoReplied is true for a sender never answered")
	}
	if err := p.DeleteAccount(ctx, "ann@x.test"); err != nil {
		t.Fatal(err)
	}
	if err := p.CreateAccount(ctx, Account{Address: "ann@x.test"}); err != nil {
		t.Fatal(err)
	}
	if already, _ := p.HasAutoReplied("ann@x.test", "bob@y.test"); already {
		t.Fatal("a deleted account's auto-reply records survived")
	}
}

// Work recorded with an append (AppendRequest.Pending) comes back with
// every repeated append of its dedup key until it is cleared; a Discard
// stores no message but is recognised when repeated.
func TestAppendPendingAndDiscard(t *testing.T) {
	s, err := NewAccountStore(t.TempDir(), 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.CreateAccount(ctx, Account{Address: "ann@x.test"}); err != nil {
		t.Fatal(err)
	}
	req := AppendRequest{Raw: []byte("kept\r\n"), DedupKey: "q1/ann@x.test", Pending: []string{"forward"}}
	first, err := p.Append(ctx, "ann@x.test", req)
	if err != nil || first.Duplicate || first.ID == "" {
		t.Fatalf("first append = %+v, %v", first, err)
	}
	again, err := p.Append(ctx, "ann@x.test", req)
	if err != nil || !again.Duplicate || again.ID != first.ID || !slices.Equal(again.Pending, []string{"forward"}) {
		t.Fatalf("repeated append before the work is done = %+v, %v; want a duplicate of %s with the forward pending", again, err, first.ID)
	}
	if err := <-p.DonePending("ann@x.test", req.DedupKey, []string{"forward"}); err != nil {
		t.Fatal(err)
	}
	again, err = p.Append(ctx, "ann@x.test", req)
	if err != nil || !again.Duplicate || again.Pending != nil {
		t.Fatalf("repeated append after the work is done = %+v, %v; want a duplicate with nothing pending", again, err)
	}
	two := AppendRequest{Raw: []byte("x\r\n"), DedupKey: "q3/ann@x.test", Pending: []string{"forward", "vacation"}}
	if _, err := p.Append(ctx, "ann@x.test", two); err != nil {
		t.Fatal(err)
	}
	if err := <-p.DonePending("ann@x.test", two.DedupKey, []string{"forward"}); err != nil {
		t.Fatal(err)
	}
	if again, err = p.Append(ctx, "ann@x.test", two); err != nil || !slices.Equal(again.Pending, []string{"vacation"}) {
		t.Fatalf("after one of two kinds is done: %+v, %v; want only the vacation pending", again, err)
	}

	drop := AppendRequest{DedupKey: "q2/ann@x.test", Discard: true, Pending: []string{"redirect"}, QuotaBytes: 1}
	res, err := p.Append(ctx, "ann@x.test", drop)
	if err != nil || res.Duplicate || res.ID != "" {
		t.Fatalf("discard = %+v, %v; want stored nothing, no error (quota not checked)", res, err)
	}
	res, err = p.Append(ctx, "ann@x.test", drop)
	if err != nil || !res.Duplicate || res.ID != "" || !slices.Equal(res.Pending, []string{"redirect"}) {
		t.Fatalf("repeated discard = %+v, %v; want a duplicate without id, redirect pending", res, err)
	}
	if _, n, _ := p.Usage("ann@x.test"); n != 2 {
		t.Fatalf("mailbox holds %d messages, want 2 (a discard stores none)", n)
	}
	if _, err := p.Append(ctx, "ann@x.test", AppendRequest{Discard: true}); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("discard without a dedup key = %v, want ErrInvalidMessage", err)
	}
}
