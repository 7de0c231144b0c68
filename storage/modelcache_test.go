package storage

import (
	"context"
	"fmt"
	"reflect"
	"testing"
)

// After every kind of change to an account's folders and state, the model
// an append finds in the cache is the one the records hold: the cache is
// never behind a folder operation, an expunge, a copy or move, a rename, a
// deletion of the folder or of the account.
func TestTheCachedModelIsTheStoredOne(t *testing.T) {
	ctx := context.Background()
	_, p := openTestPartition(t, 2)
	acct := addrIn(2, testPartitions, 0, "cache")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	addr, err := p.account(acct)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	appendOne := func(folder string) AppendResult {
		t.Helper()
		n++
		res, err := p.Append(ctx, acct, AppendRequest{Folder: folder, Raw: []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", n, n))})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// agree checks the entry an append left against the records; after
	// a change by anything else there must be no entry, or an equal one.
	agree := func(step string, mustBeCached bool) {
		t.Helper()
		cst, cfs, ok := p.models.get(addr)
		if !ok {
			if mustBeCached {
				t.Fatalf("%s: no cached model after an append", step)
			}
			return
		}
		st, fs, err := p.model(addr)
		if err != nil {
			t.Fatal(err)
		}
		if cst != st || !reflect.DeepEqual(cfs, fs) {
			t.Fatalf("%s: cached model\n %+v %+v\nthe records\n %+v %+v", step, cst, cfs, st, fs)
		}
	}

	inbox := appendOne("").FolderID
	agree("first append", true)
	appendOne("")
	appendOne("Archive")
	agree("appends", true)

	es, d, err := p.StoreFlags(ctx, acct, inbox, []uint32{1}, FlagsAdd, []string{`\Deleted`, `\Seen`})
	if err != nil || len(es) != 1 {
		t.Fatal(es, err)
	}
	durable(t, d)
	agree("store flags", false)
	appendOne("")
	agree("append after store flags", true)

	if _, d, err = p.Expunge(ctx, acct, inbox, nil); err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	agree("expunge", false)
	appendOne("")
	agree("append after expunge", true)

	work, d, err := p.CreateFolder(ctx, acct, "Work", "")
	if err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	agree("create folder", false)
	appendOne("Work")
	agree("append into the new folder", true)

	if _, d, err = p.CopyMessages(ctx, acct, inbox, []uint32{2}, work.ID, true, 0); err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	agree("move", false)
	appendOne("Work")
	agree("append after move", true)

	if d, err = p.RenameFolder(ctx, acct, "Work", "Old"); err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	agree("rename", false)
	appendOne("Old")
	agree("append after rename", true)

	if d, err = p.DeleteFolder(ctx, acct, "Old"); err != nil {
		t.Fatal(err)
	}
	durable(t, d)
	agree("delete folder", false)
	res := appendOne("Old") // created again, with a new id
	if res.FolderID == work.ID {
		t.Fatalf("the folder created again has the deleted one's id %d", work.ID)
	}
	agree("append recreating the folder", true)

	if err := p.DeleteAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := p.models.get(addr); ok {
		t.Fatal("the deleted account's model is still cached")
	}
	if _, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("Subject: x\r\n\r\nx\r\n")}); err == nil {
		t.Fatal("an append to the deleted account succeeded")
	}
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	if r := appendOne(""); r.UID != 1 {
		t.Fatalf("the account created again: first UID %d", r.UID)
	}
	agree("append to the account created again", true)
}

// The cache holds at most maxCachedModels accounts and no model of more
// than maxCachedFolders folders; a batch that touches another account's
// model records drops that account.
func TestModelCacheIsBoundedAndDropsWhatOthersChange(t *testing.T) {
	var c modelCache
	for i := range maxCachedModels + 10 {
		c.written(&Batch{model: &modelUpdate{addr: fmt.Sprintf("u%d@example.test", i), st: mailboxState{next: 2}, fs: []Folder{{ID: 1}}}})
	}
	if len(c.m) != maxCachedModels {
		t.Fatalf("%d models cached, the bound is %d", len(c.m), maxCachedModels)
	}
	c.written(&Batch{model: &modelUpdate{addr: "big@example.test", fs: make([]Folder, maxCachedFolders+1)}})
	if _, _, ok := c.get("big@example.test"); ok {
		t.Fatal("a model of more than maxCachedFolders folders was cached")
	}
	c.written(&Batch{model: &modelUpdate{addr: "a@example.test", st: mailboxState{next: 5}}})
	c.written(&Batch{model: &modelUpdate{addr: "b@example.test", st: mailboxState{next: 5}}})
	var other Batch
	other.Set(folderKey("a@example.test", 3), []byte("{}"))
	other.Set(key(prefixState, "b@example.test"), nil)
	other.Set(messageKey(prefixMeta, "c@example.test", 1), nil)
	c.written(&other)
	for _, a := range []string{"a@example.test", "b@example.test"} {
		if _, _, ok := c.get(a); ok {
			t.Errorf("%s: still cached after another batch changed its records", a)
		}
	}
	st, fs, ok := c.get("u0@example.test")
	if ok && (st.next != 2 || len(fs) != 1) {
		t.Errorf("an untouched entry changed: %+v %+v", st, fs)
	}
}

// A closed partition drops its model cache: a closed partition can stay
// reachable (from stopped account actors) after it closes.
func TestClosedPartitionDropsItsModelCache(t *testing.T) {
	ctx := context.Background()
	_, p := openTestPartition(t, 1)
	acct := addrIn(1, testPartitions, 0, "cached")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("Subject: x\r\n\r\nx\r\n")}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := p.models.get(acct); !ok {
		t.Fatal("the append left no model in the cache")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p.models.mu.Lock()
	n := len(p.models.m)
	p.models.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d models cached after Close", n)
	}
}
