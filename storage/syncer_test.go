package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/wait"
)

// TestSyncerMergesConcurrentCallers: many concurrent Sync calls are covered
// by fewer syncfs rounds, and every caller waits for a round that started
// after it called.
func TestSyncerMergesConcurrentCallers(t *testing.T) {
	var inRound atomic.Int64
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	s := newSyncer("test", func() error {
		inRound.Add(1)
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return nil
	})
	// One caller starts a round and is held in it.
	first := make(chan error, 1)
	go func() { first <- s.Sync() }()
	<-entered
	// 50 more arrive while the round runs: none may be satisfied by it.
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.Sync() }()
	}
	wait.For(t, 10*time.Second, func() bool { return s.Stats().Waits == 51 }, "51 waiters")
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if r := inRound.Load(); r != 2 {
		t.Fatalf("51 callers took %d rounds, want 2 (the running one and one more for the 50 who came during it)", r)
	}
}

// TestSyncerFailureIsSticky: after a failed round every Sync fails.
func TestSyncerFailureIsSticky(t *testing.T) {
	fail := errors.New("EIO")
	var calls atomic.Int64
	s := newSyncer("test", func() error {
		if calls.Add(1) == 2 {
			return fail
		}
		return nil
	})
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); !errors.Is(err, ErrFailed) || !errors.Is(err, fail) {
		t.Fatalf("Sync after a failed round = %v, want ErrFailed wrapping EIO", err)
	}
	if err := s.Sync(); !errors.Is(err, ErrFailed) {
		t.Fatalf("later Sync = %v, want the sticky failure", err)
	}
}

// TestSyncerSharedByPartitions: commits to 8 DBs that share a Syncer are
// durable through fewer syncfs rounds than commits.
func TestSyncerSharedByPartitions(t *testing.T) {
	root := t.TempDir()
	syncer, err := NewSyncer(root)
	if err != nil {
		t.Fatal(err)
	}
	defer syncer.Close()
	if !syncer.Covers(root) {
		t.Fatal("a Syncer does not cover its own directory")
	}
	var dbs []*DB
	for i := range 8 {
		db, err := Open(fmt.Sprintf("%s/db%d", root, i), Options{Syncer: syncer})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs = append(dbs, db)
	}
	var wg sync.WaitGroup
	for w := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				var b Batch
				b.Set(fmt.Appendf(nil, "w%d-%d", w, i), []byte("v"))
				if err := dbs[(w+i)%len(dbs)].Commit(context.Background(), &b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := syncer.Stats()
	var commits uint64
	for _, db := range dbs {
		commits += db.Stats().Commits
		for w := range 40 {
			for i := range 10 {
				if (w+i)%len(dbs) != dbs2idx(dbs, db) {
					continue
				}
				if _, err := db.Get(fmt.Appendf(nil, "w%d-%d", w, i)); err != nil {
					t.Fatalf("committed key missing: %v", err)
				}
			}
		}
	}
	t.Logf("400 commits in %d transactions over 8 DBs, %d syncfs rounds", commits, st.Rounds)
	if st.Rounds >= commits {
		t.Fatalf("%d syncfs rounds for %d transactions: the rounds were not shared", st.Rounds, commits)
	}
}

func dbs2idx(dbs []*DB, db *DB) int {
	for i, d := range dbs {
		if d == db {
			return i
		}
	}
	return -1
}

// Deliveries to one account share sync rounds with AppendAsync: the next
// append goes ahead as soon as the previous one is written, ids stay
// distinct and in order, and each is reported durable.
//
// The sync rounds are a disk that holds its first round until the 50
// appends have been written (or 10 s have passed): on a quiet machine a
// real syncfs of a nearly empty filesystem can finish before the next
// append is made, and the test would then measure the machine, not the
// sharing. Appends that waited for durability would each need a round of
// their own: 50 rounds, after the 10 s.
func TestAppendAsyncSharesRounds(t *testing.T) {
	root := t.TempDir()
	gate := make(chan struct{})
	var hold atomic.Bool
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	defer release()
	syncer := newSyncer(root, func() error {
		if hold.Load() {
			<-gate
		}
		return nil
	})
	defer syncer.Close()
	s, err := NewAccountStore(root+"/accounts", 1, Options{Syncer: syncer})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.CreateAccount(ctx, Account{Address: "hot@x.test"}); err != nil {
		t.Fatal(err)
	}
	hold.Store(true)
	timer := time.AfterFunc(10*time.Second, release)
	defer timer.Stop()
	before := syncer.Stats().Rounds
	var durables []<-chan error
	for i := 0; i < 50; i++ {
		res, d, err := p.AppendAsync(ctx, "hot@x.test", AppendRequest{DedupKey: fmt.Sprint("q", i), Raw: []byte("Subject: x\r\n\r\nx\r\n")})
		if err != nil {
			t.Fatal(err)
		}
		if res.ID != fmt.Sprint(i+1) {
			t.Fatalf("append %d got id %s", i, res.ID)
		}
		durables = append(durables, d)
	}
	release()
	for i, d := range durables {
		if err := <-d; err != nil {
			t.Fatalf("append %d not durable: %v", i, err)
		}
	}
	rounds := syncer.Stats().Rounds - before
	t.Logf("50 appends to one account in %d syncfs rounds", rounds)
	// The first round holds the first append; the other 49 are written
	// while it is held and share the next round or two.
	if rounds > 5 {
		t.Fatalf("%d rounds for 50 appends: they did not share rounds", rounds)
	}
	if _, n, _ := p.Usage("hot@x.test"); n != 50 {
		t.Fatalf("%d messages stored, want 50", n)
	}
}

// TestSyncerRoundWaitsForWritesUnderWay: a round about to start while a
// write is under way (Writing) waits for it, and the callers that come
// meanwhile share that round; with nothing under way a round is not held;
// a write that never ends holds a round no longer than the gap.
func TestSyncerRoundWaitsForWritesUnderWay(t *testing.T) {
	var rounds atomic.Int64
	s := newSyncer("test", func() error { rounds.Add(1); return nil })
	s.SetGap(time.Hour) // only the end of the writes can release a held round

	// Nothing under way: not held (it would wait an hour).
	for range 3 {
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Held != 0 || rounds.Load() != 3 {
		t.Fatalf("3 lone Syncs: %d rounds, %d held; want 3, 0", rounds.Load(), st.Held)
	}

	// Two writes under way: the round waits for both; six callers that
	// come meanwhile share it.
	s.Writing(2)
	errs := make(chan error, 10)
	go func() { errs <- s.Sync() }()
	wait.For(t, 10*time.Second, func() bool { return s.Stats().Held == 1 }, "the round held")
	for range 5 {
		go func() { errs <- s.Sync() }()
	}
	wait.For(t, 10*time.Second, func() bool { return s.Stats().Waits == 9 }, "5 more callers waiting")
	s.NotWritten(1) // one write failed: the round still waits for the other
	go func() { errs <- s.Written(1, true) }()
	for range 7 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if r := rounds.Load(); r != 4 {
		t.Fatalf("%d rounds, want 4: the held round covers the write and the 6 callers", r)
	}
	if st.Joined != 6 {
		t.Fatalf("%d callers joined the held round, want 6 (5 callers and the write)", st.Joined)
	}

	// A write that never ends: the gap bounds the hold.
	s.SetGap(20 * time.Millisecond)
	s.Writing(1)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Held != 2 || rounds.Load() != 5 {
		t.Fatalf("after a write that did not end: %d rounds, %d held; want 5, 2", rounds.Load(), st.Held)
	}
}

// TestSyncerBackgroundRoundWaitsForAnUrgentOne: a round that covers only
// writes nobody waits for (Written with urgent false) is held, and starts
// as soon as an urgent caller comes (the two share it); without one, the
// gap ends the hold.
func TestSyncerBackgroundRoundWaitsForAnUrgentOne(t *testing.T) {
	var rounds atomic.Int64
	s := newSyncer("test", func() error { rounds.Add(1); return nil })
	s.SetGap(time.Hour)
	s.Writing(1)
	errs := make(chan error, 2)
	go func() { errs <- s.Written(1, false) }()
	wait.For(t, 10*time.Second, func() bool { return s.Stats().Held == 1 }, "the background round held")
	if r := rounds.Load(); r != 0 {
		t.Fatalf("%d rounds ran for a background write held for an hour", r)
	}
	go func() { errs <- s.Sync() }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); rounds.Load() != 1 || st.Joined != 1 {
		t.Fatalf("%d rounds, %d joined; want 1 round shared by the background write and the urgent caller", rounds.Load(), st.Joined)
	}
	// Alone, a background write waits for the gap, no longer.
	s.SetGap(20 * time.Millisecond)
	s.Writing(1)
	if err := s.Written(1, false); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); rounds.Load() != 2 || st.Held != 2 {
		t.Fatalf("%d rounds, %d held; want 2, 2", rounds.Load(), st.Held)
	}
	// An urgent write with nothing under way is not held.
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); rounds.Load() != 3 || st.Held != 2 {
		t.Fatalf("%d rounds, %d held; want 3, 2", rounds.Load(), st.Held)
	}
}
