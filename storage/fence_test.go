package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/wait"
)

// runStepCommit is the step-commit helper (main_test.go): one commit per
// command, so that the parent decides exactly what happens between two.
func runStepCommit(dir string, syncfs bool) int {
	opt := Options{Owner: "stale"}
	if syncfs {
		s, err := NewSyncer(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper syncer:", err)
			return 2
		}
		defer s.Close()
		opt.Syncer = s
	}
	db, err := Open(dir, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper open:", err)
		return 2
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, key, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "c":
			var b Batch
			b.Set([]byte(key), []byte("v-"+key))
			err := db.Commit(context.Background(), &b)
			switch {
			case err == nil:
				fmt.Println("ok", key)
			case errors.Is(err, ErrFenced):
				select {
				case <-db.Failed():
					fmt.Println("err", key, "fenced", err)
				default:
					fmt.Println("err", key, "fenced-but-not-failed", err)
				}
			default:
				fmt.Println("err", key, "failed", err)
			}
		case "close":
			err := db.Close()
			fmt.Println("closed", err)
			return 0
		}
	}
	return 3
}

// TestLockFileFencesAcrossProcesses: Homing's own lock (the OFD lock of
// homing.lock) is what fences: a process that holds only it, not badger's
// flock, keeps Open out with ErrLocked naming the holder; once it is
// killed, Open succeeds.
func TestLockFileFencesAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	c := startHelper(t, helperLockOnly, dir)
	if line, ok := c.readLine(); !ok || line != "ready" {
		t.Fatalf("child said %q, want ready", line)
	}
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrLocked) || errors.Is(err, ErrLockFailed) {
		t.Fatalf("Open while a child holds homing.lock = %v, want ErrLocked (contention)", err)
	}
	if want := fmt.Sprintf("owner=helper pid=%d", c.cmd.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Fatalf("the error %q does not name the holder (%s)", err, want)
	}
	c.kill(t)
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after kill -9 of the holder: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOlderHomingStillFenced: during a rolling upgrade an older Homing
// holds a partition with badger's flock only. The new lock also takes that
// flock, so neither opens the directory while the other has it.
func TestOlderHomingStillFenced(t *testing.T) {
	dir := t.TempDir()
	old := startHelper(t, helperOlderHoming, dir)
	if line, ok := old.readLine(); !ok || line != "ready" {
		t.Fatalf("older homing said %q, want ready", line)
	}
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "badger's directory lock is held") {
		t.Fatalf("Open while an older Homing holds the dir = %v, want ErrLocked by badger's lock", err)
	}
	// Its attempt left nothing held: the older one goes on, and after it
	// is gone the directory opens.
	old.kill(t)
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after the older Homing died: %v", err)
	}
	defer db.Close()
	// And the other way round: an older Homing starting now is refused.
	late := startHelper(t, helperOlderHoming, dir)
	if line, ok := late.readLine(); !ok || line != "locked" {
		t.Fatalf("an older Homing opening a directory this one holds said %q, want locked", line)
	}
	_ = late.cmd.Wait()
}

// TestLockErrorsAreNotContention: a lock call that fails for another
// reason than a holder (EBADF as NFSv4 answers flock on a read-only
// descriptor, ENOLCK, EIO) is ErrLockFailed, never ErrLocked; a held lock
// (EAGAIN, EACCES) is ErrLocked. Where badger's flock cannot work at all
// (EBADF, ENOLCK) it is skipped: no older Homing can hold it there.
func TestLockErrorsAreNotContention(t *testing.T) {
	for _, tc := range []struct {
		kind    string
		errno   syscall.Errno
		locked  bool // ErrLocked
		failed  bool // ErrLockFailed
		opensOK bool
	}{
		{lockKindOFD, syscall.EAGAIN, true, false, false},
		{lockKindOFD, syscall.EACCES, true, false, false},
		{lockKindOFD, syscall.EBADF, false, true, false},
		{lockKindOFD, syscall.ENOLCK, false, true, false},
		{lockKindOFD, syscall.EIO, false, true, false},
		{lockKindLegacy, syscall.EWOULDBLOCK, true, false, false},
		{lockKindLegacy, syscall.EIO, false, true, false},
		{lockKindLegacy, syscall.EBADF, false, false, true},
		{lockKindLegacy, syscall.ENOLCK, false, false, true},
	} {
		t.Run(tc.kind+"-"+tc.errno.Error(), func(t *testing.T) {
			dir := t.TempDir()
			opt := Options{lockHook: func(kind string) error {
				if kind == tc.kind {
					return tc.errno
				}
				return nil
			}}
			db, err := Open(dir, opt)
			if tc.opensOK {
				if err != nil {
					t.Fatalf("Open = %v, want it open (badger's lock skipped)", err)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded with a failing lock")
			}
			if errors.Is(err, ErrLocked) != tc.locked || errors.Is(err, ErrLockFailed) != tc.failed {
				t.Fatalf("Open = %v: ErrLocked %v, ErrLockFailed %v; want %v, %v",
					err, errors.Is(err, ErrLocked), errors.Is(err, ErrLockFailed), tc.locked, tc.failed)
			}
			if !errors.Is(err, tc.errno) && !strings.Contains(err.Error(), tc.errno.Error()) {
				t.Fatalf("Open = %v does not say %v", err, tc.errno)
			}
			// A failed attempt holds nothing.
			db, err = Open(dir, Options{})
			if err != nil {
				t.Fatalf("Open after the failed attempt: %v", err)
			}
			db.Close()
		})
	}
}

// TestEpochIncrementsOnEveryOpen: each open writes the next epoch, durably
// in the directory before it serves, with its owner.
func TestEpochIncrementsOnEveryOpen(t *testing.T) {
	dir := t.TempDir()
	for want := uint64(1); want <= 3; want++ {
		db, err := Open(dir, Options{Owner: "be1"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := readEpoch(dir)
		if err != nil {
			t.Fatal(err)
		}
		if db.Epoch() != want || r.Epoch != want || r.Owner != "be1" || r.PID != os.Getpid() {
			t.Fatalf("open %d: Epoch() %d, file %+v", want, db.Epoch(), r)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNewerEpochStopsTheStaleOwner: a child process owns a DB and commits
// one key per command. This process then writes a newer epoch into the
// directory (what the next owner does after the child lost its lock,
// simulated: the child's OFD lock is still held here). The child's next
// commit fails with ErrFenced, the DB has failed (Failed is closed), and
// that commit never reached the disk: reopened, the directory has every
// acknowledged key and not the refused one.
func TestNewerEpochStopsTheStaleOwner(t *testing.T) {
	t.Run("per-DB sync", func(t *testing.T) { testNewerEpochStopsTheStaleOwner(t, false) })
	t.Run("shared syncfs", func(t *testing.T) { testNewerEpochStopsTheStaleOwner(t, true) })
}

func testNewerEpochStopsTheStaleOwner(t *testing.T, syncfs bool) {
	dir := t.TempDir()
	var env []string
	if syncfs {
		env = append(env, helperSyncEnv+"=1")
	}
	c := startHelper(t, helperStepCommit, dir, env...)
	say := func(cmd string) string {
		t.Helper()
		if _, err := fmt.Fprintln(c.stdin, cmd); err != nil {
			t.Fatal(err)
		}
		line, ok := c.readLine()
		if !ok {
			t.Fatalf("the child stopped after %q", cmd)
		}
		return line
	}
	for i := range 10 {
		if got := say(fmt.Sprintf("c k%d", i)); got != fmt.Sprintf("ok k%d", i) {
			t.Fatalf("commit %d: %q", i, got)
		}
	}
	// The child holds the lock, so the directory cannot be opened here.
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while the child owns it = %v, want ErrLocked", err)
	}
	r, err := readEpoch(dir)
	if err != nil || r.Owner != "stale" {
		t.Fatalf("epoch %+v, %v", r, err)
	}
	if _, err := writeEpoch(dir, epochRecord{Epoch: r.Epoch + 1, Owner: "next", Opened: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := say("c late"); !strings.HasPrefix(got, "err late fenced ") {
		t.Fatalf("the stale owner's commit after a newer epoch: %q, want refused as fenced with the DB failed", got)
	}
	if got := say("c later"); !strings.HasPrefix(got, "err later ") {
		t.Fatalf("a later commit: %q, want refused", got)
	}
	if got := say("close"); got != "closed <nil>" {
		t.Fatalf("close: %q", got)
	}
	_ = c.cmd.Wait()

	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Epoch() != r.Epoch+2 {
		t.Fatalf("reopened with epoch %d, want %d", db.Epoch(), r.Epoch+2)
	}
	for i := range 10 {
		if _, err := db.Get(fmt.Appendf(nil, "k%d", i)); err != nil {
			t.Fatalf("acknowledged key k%d lost: %v", i, err)
		}
	}
	for _, k := range []string{"late", "later"} {
		if _, err := db.Get([]byte(k)); err == nil {
			t.Fatalf("the refused commit %q reached the disk", k)
		}
	}
}

// TestEpochCheckedAfterTheSyncRound: an epoch that turns newer while a
// shared sync round runs fails the round's commits (nobody is told they
// are stored) and the DB.
func TestEpochCheckedAfterTheSyncRound(t *testing.T) {
	dir := t.TempDir()
	var bump atomic.Bool
	s := newSyncer(dir, func() error {
		if bump.Load() {
			r, err := readEpoch(filepath.Join(dir, "db"))
			if err != nil {
				return err
			}
			_, err = writeEpoch(filepath.Join(dir, "db"), epochRecord{Epoch: r.Epoch + 1, Owner: "next"})
			return err
		}
		return nil
	})
	db, err := Open(filepath.Join(dir, "db"), Options{Syncer: s})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b Batch
	b.Set([]byte("a"), []byte("1"))
	if err := db.Commit(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	bump.Store(true)
	b = Batch{}
	b.Set([]byte("b"), []byte("2"))
	if err := db.Commit(context.Background(), &b); !errors.Is(err, ErrFenced) || !errors.Is(err, ErrFailed) {
		t.Fatalf("commit whose round saw a newer epoch = %v, want ErrFenced and ErrFailed", err)
	}
	select {
	case <-db.Failed():
	default:
		t.Fatal("Failed not closed")
	}
}

// TestSyncEIOFailsTheDBAtOnce: an EIO from the shared sync round (a lost
// lock on a network filesystem answers writes so) fails the commits of the
// round and every later one, closes Failed, and after a reopen every
// acknowledged write is there.
func TestSyncEIOFailsTheDBAtOnce(t *testing.T) {
	root := t.TempDir()
	var eio atomic.Bool
	s, err := NewSyncer(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	syncfs := s.sync
	s.sync = func() error {
		if eio.Load() {
			return syscall.EIO
		}
		return syncfs()
	}
	store, err := NewAccountStore(filepath.Join(root, "accounts"), 1, Options{Syncer: s})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p, err := store.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.CreateAccount(ctx, Account{Address: "a@x.test"}); err != nil {
		t.Fatal(err)
	}
	var acked []string
	for i := range 5 {
		res, err := p.Append(ctx, "a@x.test", AppendRequest{DedupKey: fmt.Sprint("q", i), Raw: []byte("Subject: x\r\n\r\nx\r\n")})
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, res.ID)
	}
	eio.Store(true)
	_, err = p.Append(ctx, "a@x.test", AppendRequest{DedupKey: "q-eio", Raw: []byte("Subject: y\r\n\r\ny\r\n")})
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append whose sync failed = %v, want ErrFailed wrapping EIO", err)
	}
	select {
	case <-p.Failed():
	default:
		t.Fatal("Failed not closed after EIO")
	}
	if _, err := p.Append(ctx, "a@x.test", AppendRequest{DedupKey: "q-after", Raw: []byte("Subject: z\r\n\r\nz\r\n")}); !errors.Is(err, ErrFailed) {
		t.Fatalf("append after the failure = %v, want ErrFailed", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	eio.Store(false)
	p, err = store.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.Messages("a@x.test", "")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, m := range ms {
		have[m.ID] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("acknowledged message %s lost after the EIO and a reopen (have %v)", id, ms)
		}
	}
}

// Concurrent callers of a sharedCheck share runs, but nobody gets the
// result of a run that started before it asked.
func TestSharedCheckNeverAnswersWithAnEarlierRun(t *testing.T) {
	var s sharedCheck
	var mu sync.Mutex
	gen, runs := 0, 0 // gen: bumped by each caller before it asks
	release := make(chan struct{})
	check := func() error {
		mu.Lock()
		seen := gen
		runs++
		first := runs == 1
		mu.Unlock()
		if first {
			<-release // hold the first run while others ask
		}
		return fmt.Errorf("%d", seen)
	}
	const callers = 50
	var wg sync.WaitGroup
	errs := make([]error, callers)
	asked := make([]int, callers)
	started := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		close(started)
		errs[0] = s.do(check)
	}()
	<-started
	for i := 1; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			gen++
			asked[i] = gen
			mu.Unlock()
			errs[i] = s.do(check)
		}()
	}
	wait.For(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return gen == callers-1
	}, "every caller asked")
	close(release)
	wg.Wait()
	for i := 1; i < callers; i++ {
		var seen int
		fmt.Sscan(errs[i].Error(), &seen)
		if seen < asked[i] {
			t.Fatalf("caller %d asked at generation %d and got a run that saw generation %d", i, asked[i], seen)
		}
	}
	if runs > 3 {
		t.Errorf("%d runs for %d callers, want them shared (at most 3)", runs, callers)
	}
}

// TestLostEpochFileStopsTheDB: a directory that no longer holds the
// epoch file this open wrote (removed or replaced under the open: its
// files may be unlinked, and nothing written through them would survive)
// fails the next commit and the DB, and the error says what happened.
// (Removing the whole directory does the same, but badger's close then
// retries its memtable flush forever: cmd/homing bounds the shutdown,
// node/shutdown_test.go.)
func TestLostEpochFileStopsTheDB(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b1 Batch
	b1.Set([]byte("k1"), []byte("v"))
	if err := db.Commit(context.Background(), &b1); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, epochFileName)); err != nil {
		t.Fatal(err)
	}
	var b2 Batch
	b2.Set([]byte("k2"), []byte("v"))
	err = db.Commit(context.Background(), &b2)
	if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "no longer holds its epoch file") {
		t.Fatalf("commit after the epoch file went: %v; want ErrFenced saying the epoch file is gone", err)
	}
	select {
	case <-db.Failed():
	default:
		t.Fatal("the DB has not failed")
	}
}
