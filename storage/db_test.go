package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/wait"
)

func openTestDB(t *testing.T, opt Options) *DB {
	t.Helper()
	db, err := Open(t.TempDir(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustGet(t *testing.T, db *DB, k string) string {
	t.Helper()
	v, err := db.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return string(v)
}

func TestGroupCommitMergesConcurrentCommits(t *testing.T) {
	db := openTestDB(t, Options{})
	const writers = 50
	start := make(chan struct{})
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var b Batch
			b.Set(fmt.Appendf(nil, "key-%02d", i), fmt.Appendf(nil, "value-%02d", i))
			errs <- db.Commit(context.Background(), &b)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	for i := range writers {
		if got, want := mustGet(t, db, fmt.Sprintf("key-%02d", i)), fmt.Sprintf("value-%02d", i); got != want {
			t.Errorf("key-%02d = %q, want %q", i, got, want)
		}
	}
	st := db.Stats()
	t.Logf("stats: %+v", st)
	if st.Batches != writers {
		t.Errorf("Batches = %d, want %d", st.Batches, writers)
	}
	if st.Commits >= writers {
		t.Errorf("Commits = %d, want < %d (concurrent batches should share syncs)", st.Commits, writers)
	}
	if st.MaxMerged < 2 {
		t.Errorf("MaxMerged = %d, want >= 2", st.MaxMerged)
	}
}

func TestSubmitOrderIsCommitOrder(t *testing.T) {
	db := openTestDB(t, Options{})
	// Two writes to one key, the later wins.
	var b1, b2 Batch
	b1.Set([]byte("k"), []byte("1"))
	b2.Set([]byte("k"), []byte("2"))
	c1, c2 := db.Submit(&b1), db.Submit(&b2)
	if err := <-c2; err != nil {
		t.Fatal(err)
	}
	// c1 must have been resolved no later than c2.
	select {
	case err := <-c1:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("batch 2 was acknowledged before batch 1")
	}
	if got := mustGet(t, db, "k"); got != "2" {
		t.Fatalf("k = %q, want 2", got)
	}

	// Many submits without waiting: they merge, and order still holds,
	// for sets and deletes alike.
	const n = 300
	chans := make([]<-chan error, n)
	for i := range n {
		var b Batch
		b.Set([]byte("k"), fmt.Appendf(nil, "%d", i))
		if i%3 == 0 {
			b.Delete([]byte("gone"))
		} else {
			b.Set([]byte("gone"), []byte("back"))
		}
		chans[i] = db.Submit(&b)
	}
	if err := <-chans[n-1]; err != nil {
		t.Fatal(err)
	}
	for i := range n - 1 {
		select {
		case err := <-chans[i]:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("batch %d unresolved after batch %d was acknowledged", i, n-1)
		}
	}
	if got := mustGet(t, db, "k"); got != fmt.Sprint(n-1) {
		t.Fatalf("k = %q, want %d", got, n-1)
	}
	// Batch n-1 (i%3 == 2) set "gone" last.
	if got := mustGet(t, db, "gone"); got != "back" {
		t.Fatalf("gone = %q, want back", got)
	}
	if st := db.Stats(); st.MaxMerged < 2 {
		t.Fatalf("MaxMerged = %d: the batches were not merged, so the test did not cover merged commits", st.MaxMerged)
	}
}

func TestBatchIsAtomicAndLastWriteWins(t *testing.T) {
	db := openTestDB(t, Options{})
	var b Batch
	b.Set([]byte("a"), []byte("1"))
	b.Set([]byte("a"), []byte("2"))
	b.Set([]byte("b"), []byte("x"))
	b.Delete([]byte("b"))
	if b.Len() != 4 {
		t.Fatalf("Len = %d, want 4", b.Len())
	}
	if err := db.Commit(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, db, "a"); got != "2" {
		t.Fatalf("a = %q, want 2", got)
	}
	if _, err := db.Get([]byte("b")); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("Get(b) = %v, want ErrNotFound", err)
	}
}

func TestEmptyBatchIsABarrier(t *testing.T) {
	db := openTestDB(t, Options{})
	var b Batch
	b.Set([]byte("k"), []byte("v"))
	c1 := db.Submit(&b)
	if err := db.Commit(context.Background(), new(Batch)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c1:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("empty batch completed before the batch submitted earlier")
	}
	if st := db.Stats(); st.Commits != 1 {
		t.Fatalf("Commits = %d, want 1 (an empty batch writes nothing)", st.Commits)
	}
}

func TestGetMissingIsNotFound(t *testing.T) {
	db := openTestDB(t, Options{})
	if _, err := db.Get([]byte("nope")); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("Get = %v, want mail.ErrNotFound", err)
	}
}

func TestScanPrefixInKeyOrderWithCopies(t *testing.T) {
	db := openTestDB(t, Options{})
	var b Batch
	for _, k := range []string{"p/3", "p/1", "q/0", "p/2", "o/9", "p/10"} {
		b.Set([]byte(k), []byte("v"+k))
	}
	big := bytes.Repeat([]byte("x"), 4<<10) // in the value log
	b.Set([]byte("p/big"), big)
	if err := db.Commit(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var kept [][]byte
	err := db.Scan([]byte("p/"), func(k, v []byte) error {
		keys = append(keys, string(k))
		kept = append(kept, v)
		if string(k) != "p/big" && string(v) != "v"+string(k) {
			t.Errorf("%s = %q", k, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"p/1", "p/10", "p/2", "p/3", "p/big"}
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("keys = %v, want %v", keys, want)
	}
	if !bytes.Equal(kept[4], big) || string(kept[0]) != "vp/1" {
		t.Fatal("values kept after Scan returned were changed: they are not copies")
	}

	stop := errors.New("stop")
	n := 0
	err = db.Scan(nil, func(k, v []byte) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Scan returned %v after %d calls, want stop after 1", err, n)
	}
}

func TestSubmitRefusesBadBatchesWithoutHarmingOthers(t *testing.T) {
	db := openTestDB(t, Options{})
	good := func(k string) <-chan error {
		var b Batch
		b.Set([]byte(k), []byte("ok"))
		return db.Submit(&b)
	}
	var empty, reserved, huge, tooMany Batch
	empty.Set(nil, []byte("v"))
	reserved.Set([]byte("!badger!head"), []byte("v"))
	huge.Set([]byte("huge"), make([]byte, MaxValueBytes+1))
	for i := range 20000 { // far beyond badger's per-transaction entry count
		tooMany.Set(fmt.Appendf(nil, "many-%d", i), []byte("v"))
	}
	g1 := good("g1")
	cases := []struct {
		name string
		b    *Batch
		want error
	}{
		{"empty key", &empty, ErrInvalidKey},
		{"reserved key", &reserved, ErrInvalidKey},
		{"value too big", &huge, ErrValueTooBig},
		{"too many writes", &tooMany, ErrBatchTooBig},
	}
	for _, c := range cases {
		if err := <-db.Submit(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := <-db.Submit(nil); err == nil {
		t.Error("Submit(nil) succeeded")
	}
	g2 := good("g2")
	for _, ch := range []<-chan error{g1, g2} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if mustGet(t, db, "g1") != "ok" || mustGet(t, db, "g2") != "ok" {
		t.Fatal("good batches lost")
	}
	if _, err := db.Get([]byte("many-0")); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("part of a refused batch was written: %v", err)
	}
	if db.Err() != nil {
		t.Fatalf("Err() = %v after refused batches", db.Err())
	}
}

func TestMaxBatchBytesSplitsGroups(t *testing.T) {
	db := openTestDB(t, Options{MaxBatchBytes: 10 << 10})
	value := bytes.Repeat([]byte("v"), 4<<10)
	chans := make([]<-chan error, 40)
	for i := range chans {
		var b Batch
		b.Set(fmt.Appendf(nil, "k%d", i), value)
		chans[i] = db.Submit(&b)
	}
	for _, ch := range chans {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	// 4 KiB + key per batch, 10 KiB per group: at most 2 batches each.
	if st := db.Stats(); st.MaxMerged > 2 || st.Commits < 20 {
		t.Fatalf("stats %+v: groups exceed MaxBatchBytes", st)
	}
}

func TestCloseDrainsPendingBatches(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	chans := make([]<-chan error, n)
	for i := range n {
		var b Batch
		b.Set(fmt.Appendf(nil, "k%03d", i), []byte("v"))
		chans[i] = db.Submit(&b)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for i, ch := range chans {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("batch %d: %v", i, err)
			}
		default:
			t.Fatalf("batch %d unresolved after Close", i)
		}
	}
	var b Batch
	b.Set([]byte("late"), []byte("v"))
	if err := <-db.Submit(&b); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close = %v, want ErrClosed", err)
	}
	if _, err := db.Get([]byte("k000")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}

	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := 0
	if err := db.Scan([]byte("k"), func(k, v []byte) error { count++; return nil }); err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("%d keys after reopen, want %d", count, n)
	}
}

func TestCommitHonoursContext(t *testing.T) {
	db := openTestDB(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var b Batch
	b.Set([]byte("k"), []byte("v"))
	if err := db.Commit(ctx, &b); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit = %v, want context.Canceled", err)
	}
	if _, err := db.Get([]byte("k")); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("a batch whose context was done before Commit was written: %v", err)
	}
}

// A failed sync that badger only logs must fail the commit and every later
// write.
func TestSwallowedSyncErrorFailsTheDB(t *testing.T) {
	db := openTestDB(t, Options{})
	var b Batch
	b.Set([]byte("before"), []byte("v"))
	if err := db.Commit(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	// What badger's valueLog.write does when the sync fails.
	lg := &badgerLogger{log: db.log, onSyncError: db.noteSyncError}
	lg.Errorf("Error while curlf sync: %v\n", errors.New("input/output error"))

	var b2 Batch
	b2.Set([]byte("after"), []byte("v"))
	err := db.Commit(context.Background(), &b2)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("Commit after a failed sync = %v, want ErrFailed with the cause", err)
	}
	if !errors.Is(db.Err(), ErrFailed) {
		t.Fatalf("Err() = %v, want ErrFailed", db.Err())
	}
	var b3 Batch
	b3.Set([]byte("later"), []byte("v"))
	if err := <-db.Submit(&b3); !errors.Is(err, ErrFailed) {
		t.Fatalf("Submit after failure = %v, want ErrFailed", err)
	}
	if st := db.Stats(); st.Failed != 1 {
		t.Fatalf("Failed = %d, want 1 (the refused Submit is not counted)", st.Failed)
	}
	// Reads still work.
	if mustGet(t, db, "before") != "v" {
		t.Fatal("read failed")
	}
}

func TestValueLogGCRunsPeriodically(t *testing.T) {
	db := openTestDB(t, Options{ValueLogGCInterval: 5 * time.Millisecond})
	wait.For(t, 10*time.Second, func() bool { return db.Stats().GCRuns > 0 }, "a value-log GC run")
}

func TestValueLogGCOff(t *testing.T) {
	db := openTestDB(t, Options{ValueLogGCInterval: -1})
	var b Batch
	b.Set([]byte("k"), []byte("v"))
	if err := db.Commit(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.gcDone:
	default:
		t.Fatal("GC goroutine exists although GC is off")
	}
	if db.Stats().GCRuns != 0 {
		t.Fatal("GC ran although it is off")
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{MemTableSize: 1}.normalized()
	if o.MemTableSize != MinMemTableSize || o.MaxBatchBytes != DefaultMaxBatchBytes ||
		o.ValueLogGCInterval != DefaultValueLogGCInterval || o.Logger == nil {
		t.Fatalf("normalized zero options: %+v", o)
	}
	db := openTestDB(t, Options{})
	if !db.bdb.Opts().SyncWrites {
		t.Fatal("badger opened without SyncWrites: acknowledged writes would not be synced")
	}
	if got := db.bdb.Opts().ValueThreshold; got != genericProfile.valueThreshold {
		t.Fatalf("ValueThreshold = %d, want %d", got, genericProfile.valueThreshold)
	}
}
