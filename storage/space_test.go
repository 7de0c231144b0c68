package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

const mib = 1 << 20

// fakeFS is an injected statfs: the free bytes are what the test says,
// minus what the test's writes are said to use.
type fakeFS struct {
	avail atomic.Int64
	calls atomic.Int64
}

func (f *fakeFS) statfs() (int64, int64, error) {
	f.calls.Add(1)
	return f.avail.Load(), 1 << 40, nil
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logBuffer collects log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}
func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

func newTestSpace(t *testing.T, cfg SpaceConfig, avail int64) (*Space, *fakeFS, *clock, *logBuffer) {
	t.Helper()
	fs := &fakeFS{}
	fs.avail.Store(avail)
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	logs := &logBuffer{}
	cfg.Statfs, cfg.Now = fs.statfs, c.now
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	if cfg.Store == "" {
		cfg.Store = "queue"
	}
	s, err := NewSpace(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, fs, c, logs
}

// Below MinFree new mail is refused with an error wrapping ErrNoSpace (and
// mail.ErrNoSpace, which SMTP answers 452 4.3.1); the state is logged once
// when it starts and once when it ends, however many refusals there are
// in between; admission opens again only some way above the limit, so
// that a disk at the limit does not flap.
func TestSpaceAdmitBelowMinFree(t *testing.T) {
	s, fs, c, logs := newTestSpace(t, SpaceConfig{MinFree: 100 * mib}, 200*mib)
	if err := s.Admit(0); err != nil {
		t.Fatalf("200 MiB free, limit 100 MiB: %v", err)
	}
	if err := s.Admit(150 * mib); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("a declared size of 150 MiB with 200 free and a 100 MiB limit: %v, want ErrNoSpace", err)
	}
	fs.avail.Store(99 * mib)
	for range 50 {
		c.add(spaceTTL)
		err := s.Admit(0)
		if !errors.Is(err, ErrNoSpace) || !errors.Is(err, mail.ErrNoSpace) || !mail.IsTemporary(err) {
			t.Fatalf("99 MiB free: %v, want a temporary error wrapping mail.ErrNoSpace", err)
		}
	}
	if n := logs.count("free space below the limit"); n != 1 {
		t.Errorf("%d log lines about the limit for 50 refusals, want 1:\n%s", n, logs.buf.String())
	}
	if !s.Status().Low {
		t.Error("the status does not say low")
	}
	fs.avail.Store(100*mib + 1) // at the limit again, not past the hysteresis
	c.add(spaceTTL)
	if err := s.Admit(0); err == nil {
		t.Error("admitted at the limit: the state flaps")
	}
	fs.avail.Store(110 * mib)
	c.add(spaceTTL)
	if err := s.Admit(0); err != nil {
		t.Fatalf("110 MiB free: %v", err)
	}
	if n := logs.count("free space above the limit again"); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
	if s.Status().Low {
		t.Error("still low")
	}
}

// The state goes low on what statfs says, not on the estimate of what was
// written since it last answered: writes that the disk did not take in
// full (a body linked into a mailbox) do not close admission, and so it
// does not open again at the next refresh (the flapping once seen on a
// small tmpfs).
func TestSpaceLowOnAFreshAnswer(t *testing.T) {
	s, fs, _, logs := newTestSpace(t, SpaceConfig{MinFree: 100 * mib}, 120*mib)
	if err := s.claimWrite(30*mib, false); err != nil {
		t.Fatal(err)
	}
	s.release(30 * mib) // counted as written; the disk took nothing
	calls := fs.calls.Load()
	if err := s.Admit(0); err != nil {
		t.Fatalf("120 MiB free after writes the disk did not take: %v", err)
	}
	if fs.calls.Load() != calls+1 {
		t.Errorf("%d statfs calls at the estimated crossing, want 1", fs.calls.Load()-calls)
	}
	if n := logs.count("free space below the limit"); n != 0 {
		t.Errorf("went low on the estimate:\n%s", logs.buf.String())
	}
	// Writes the disk did take: low, once.
	fs.avail.Store(90 * mib)
	if err := s.claimWrite(30*mib, false); err != nil {
		t.Fatal(err)
	}
	s.release(30 * mib)
	if err := s.Admit(0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("90 MiB free: %v, want ErrNoSpace", err)
	}
	if err := s.Admit(0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("90 MiB free, again: %v, want ErrNoSpace", err)
	}
	if n := logs.count("free space below the limit"); n != 1 {
		t.Errorf("%d lines about the limit, want 1", n)
	}
}

// The admission limit is never below what the stores need for their own
// writes (the floor of their DBs) and the room bodies keep above it: a
// --min-free-space smaller than that would refuse at the end of DATA
// instead of MAIL FROM.
func TestSpaceAdmitLimitAtLeastTheFloor(t *testing.T) {
	s, _, _, _ := newTestSpace(t, SpaceConfig{MinFree: 1}, 2*metaMargin-1)
	st := s.Status()
	if st.MinFree != 2*metaMargin || !errors.Is(s.Admit(0), ErrNoSpace) {
		t.Fatalf("limit %d, want %d (the empty floor and twice the margin); Admit: %v", st.MinFree, 2*metaMargin, s.Admit(0))
	}
}

// Claims count as used while their writes run and, once done, until
// statfs answers again: concurrent writers cannot all pass one check. A claim that the cached answer refuses asks
// statfs once more (the disk may have been freed).
func TestSpaceClaimsAddUp(t *testing.T) {
	s, fs, c, _ := newTestSpace(t, SpaceConfig{}, 100*mib)
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.claimWrite(10*mib, false); err != nil {
				refused.Add(1)
			} else {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	// Floor: no DB registered, 0. 100 MiB holds ten claims of 10 MiB.
	if ok.Load() != 10 || refused.Load() != 10 {
		t.Fatalf("%d claims of 10 MiB passed, %d refused on 100 MiB; want 10 and 10", ok.Load(), refused.Load())
	}
	before := fs.calls.Load()
	fs.avail.Store(500 * mib) // freed meanwhile
	if err := s.claimWrite(10*mib, false); err != nil {
		t.Fatalf("the disk was freed: %v", err)
	}
	if fs.calls.Load() != before+1 {
		t.Errorf("%d statfs calls for a refused-then-rechecked claim, want 1", fs.calls.Load()-before)
	}
	if st := s.Status(); st.Free != 500*mib {
		t.Errorf("free %d", st.Free)
	}
	// The writes are done: their bytes count until statfs answers again
	// (and then are in its answer).
	s.release(110 * mib)
	s.mu.Lock()
	free := s.avail - s.claimsLocked()
	s.mu.Unlock()
	if free != 390*mib {
		t.Errorf("free after 110 MiB were written on 500: %d MiB", free>>20)
	}
	c.add(spaceTTL)
	if err := s.claimBody(400 * mib); err != nil {
		t.Fatalf("a body of 400 MiB on 500 MiB free: %v", err)
	}
	if err := s.claimBody(100 * mib); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("a second body of 100 MiB: %v, want ErrNoSpace", err)
	}
}

// Bodies stop above the floor plus their margin, transactions that add
// data at the floor, and maintenance (results, deletions: what frees
// space) only when the bytes are not there at all.
func TestSpaceLevels(t *testing.T) {
	s, fs, c, _ := newTestSpace(t, SpaceConfig{MinFree: 64 * mib}, 1<<40)
	db, err := Open(t.TempDir(), Options{ValueLogGCInterval: -1, Space: s})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	floor := s.Status().Floor
	if floor < headroomBase {
		t.Fatalf("floor %d with one DB, want at least %d", floor, headroomBase)
	}
	at := func(avail int64) {
		fs.avail.Store(avail)
		c.add(2 * spaceTTL) // earlier claims are in the answers by now
	}
	at(floor + metaMargin + 1*mib)
	if err := s.claimBody(2 * mib); !errors.Is(err, ErrNoSpace) {
		t.Errorf("a body into the margin above the floor: %v", err)
	}
	if err := s.claimWrite(512<<10, false); err != nil {
		t.Errorf("a write above the floor: %v", err)
	}
	s.release(512 << 10)
	at(floor + 100<<10)
	if err := s.claimWrite(512<<10, false); !errors.Is(err, ErrNoSpace) {
		t.Errorf("a write into the floor: %v", err)
	}
	if err := s.claimWrite(64<<10, true); err != nil {
		t.Errorf("maintenance with the bytes there: %v", err)
	}
	s.release(64 << 10)
	at(32 << 10)
	if err := s.claimWrite(64<<10, true); !errors.Is(err, ErrNoSpace) {
		t.Errorf("maintenance with no bytes left: %v", err)
	}
}

// A DB whose filesystem has no room refuses a write before badger sees
// it, with ErrNoSpace, and stays healthy: not ErrFailed, and the next
// write works once space is back (no reopen). Writes that delete go
// through where writes that add data do not.
func TestDBNoSpaceIsNotSticky(t *testing.T) {
	s, fs, c, _ := newTestSpace(t, SpaceConfig{}, 1<<40)
	db, err := Open(t.TempDir(), Options{ValueLogGCInterval: -1, Space: s})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	put := func(k string, v []byte) error {
		var b Batch
		b.Set([]byte(k), v)
		return db.Commit(ctx, &b)
	}
	if err := put("a", bytes.Repeat([]byte("x"), 4096)); err != nil {
		t.Fatal(err)
	}
	fs.avail.Store(s.Status().Floor) // at the floor: nothing above it
	c.add(2 * spaceTTL)
	err = put("b", bytes.Repeat([]byte("y"), 4096))
	if !errors.Is(err, ErrNoSpace) || errors.Is(err, ErrFailed) {
		t.Fatalf("a write at the floor: %v, want ErrNoSpace and not ErrFailed", err)
	}
	if db.Err() != nil {
		t.Fatalf("the DB failed: %v", db.Err())
	}
	var del Batch
	del.maintenance = true
	del.Delete([]byte("a"))
	if err := db.Commit(ctx, &del); err != nil {
		t.Fatalf("a deletion at the floor: %v", err)
	}
	fs.avail.Store(1 << 40)
	c.add(2 * spaceTTL)
	if err := put("b", bytes.Repeat([]byte("y"), 4096)); err != nil {
		t.Fatalf("space is back: %v", err)
	}
	if v, err := db.Get([]byte("b")); err != nil || len(v) != 4096 {
		t.Fatalf("read back: %d bytes, %v", len(v), err)
	}
}

// A body that meets a full disk mid-stream is an ErrNoSpace of its writer
// and leaves no file behind; Commit is never reached with part of it.
func TestBodyWriterNoSpaceLeavesNoFile(t *testing.T) {
	s, fs, c, _ := newTestSpace(t, SpaceConfig{}, 1<<40)
	dir := t.TempDir()
	q, err := OpenQueue(dir, Options{ValueLogGCInterval: -1, Space: s})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	w, err := q.NewBody()
	if err != nil {
		t.Fatal(err)
	}
	piece := bytes.Repeat([]byte("z"), 32<<10)
	for range 16 { // 512 KiB: a file by now
		if _, err := w.Write(piece); err != nil {
			t.Fatal(err)
		}
	}
	if n := countFiles(t, filepath.Join(dir, bodiesDir)); n != 1 {
		t.Fatalf("%d body files while writing, want 1", n)
	}
	fs.avail.Store(0)
	c.add(spaceTTL)
	var werr error
	for range 8 {
		if _, werr = w.Write(piece); werr != nil {
			break
		}
	}
	if !errors.Is(werr, ErrNoSpace) {
		t.Fatalf("writing on a full disk: %v, want ErrNoSpace", werr)
	}
	if n := countFiles(t, filepath.Join(dir, bodiesDir)); n != 0 {
		t.Fatalf("%d body files left after the failed write, want 0", n)
	}
	if _, err := w.Commit(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Commit after the failure: %v", err)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// The reserve file is made once there is room for it above the limit,
// removed when the free space falls below the floor (another program
// filled the disk), and, at the start of a node on a disk with less free
// space than the reserve, removed before anything opens.
func TestSpaceReserveFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ReserveName)
	fs := &fakeFS{}
	fs.avail.Store(1 << 40)
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	logs := &logBuffer{}
	cfg := SpaceConfig{Store: "queue", MinFree: 64 * mib, Reserve: 1 * mib, ReservePath: path, Statfs: fs.statfs, Now: c.now,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}
	s, err := NewSpace(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 1*mib {
		t.Fatalf("the reserve file: %v, %v", fi, err)
	}
	db, err := Open(filepath.Join(dir, "db"), Options{ValueLogGCInterval: -1, Space: s})
	if err != nil {
		t.Fatal(err)
	}
	fs.avail.Store(100 << 10) // below the floor: the DB's headroom
	s.Tick()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the reserve is still there below the floor: %v", err)
	}
	if !strings.Contains(logs.buf.String(), "released the space reserve") {
		t.Errorf("no log line about the release:\n%s", logs.buf.String())
	}
	fs.avail.Store(64*mib + 1*mib) // room for the limit, not for the reserve as well
	s.Tick()
	if _, err := os.Stat(path); err == nil {
		t.Fatal("the reserve was made again with no room for it above the limit")
	}
	fs.avail.Store(1 << 30)
	s.Tick()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("not made again with room: %v", err)
	}
	db.Close()
	s.Close()

	// A start with less free space than the reserve removes it at once.
	fs.avail.Store(512 << 10)
	s2, err := NewSpace(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a start on a full disk kept the reserve: %v", err)
	}
	if st := s2.Status(); st.ReserveHeld || !st.Low {
		t.Errorf("status %+v", st)
	}
}

// Start's looks notice a disk freed without any traffic (the metric and
// the readiness check follow it), and Close stops them.
func TestSpaceStartNoticesRecovery(t *testing.T) {
	fs := &fakeFS{}
	fs.avail.Store(1 * mib)
	logs := &logBuffer{}
	s, err := NewSpace(t.TempDir(), SpaceConfig{Store: "accounts", MinFree: 32 * mib, Interval: 10 * time.Millisecond,
		Statfs: fs.statfs, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.Status().Low {
		t.Fatal("not low at 1 MiB free")
	}
	fs.avail.Store(1 << 30)
	deadline := time.Now().Add(5 * time.Second)
	for s.Status().Low && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Status().Low {
		t.Fatal("the freed disk was not noticed")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := logs.count("stores=accounts"); n < 2 {
		t.Errorf("the log lines do not name the store:\n%s", logs.buf.String())
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 64 * mib: "64.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// bounds covers what badger writes for a batch: each entry's header,
// versioned key and CRC, the value in the WAL below the threshold and in
// the value log (a pointer in the WAL) from it on, and the transaction's
// own entry.
func TestBounds(t *testing.T) {
	var b Batch
	b.Set([]byte("small"), make([]byte, 100))
	b.Set([]byte("large"), make([]byte, 5000))
	b.Delete([]byte("gone"))
	vb, wb := bounds([]*pending{{b: &b}}, 1024)
	wantV := int64(5 + entryOverhead + 5000)
	wantW := int64(5+entryOverhead+100) + int64(5+entryOverhead+vptrBytes) + int64(4+entryOverhead) + txnOverhead
	if vb != wantV || wb != wantW {
		t.Fatalf("bounds = %d, %d; want %d, %d", vb, wb, wantV, wantW)
	}
}

// A DB is not opened on a filesystem without the room badger.Open writes
// into (its LOCK file, new files' headers through mappings): an error
// wrapping ErrNoSpace, never a fault.
func TestOpenNeedsRoom(t *testing.T) {
	s, fs, _, _ := newTestSpace(t, SpaceConfig{}, openBytes-1)
	dir := t.TempDir()
	if _, err := Open(dir, Options{ValueLogGCInterval: -1, Space: s}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("open with %d bytes free: %v, want ErrNoSpace", openBytes-1, err)
	}
	fs.avail.Store(1 << 40)
	db, err := Open(dir, Options{ValueLogGCInterval: -1, Space: s})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// The mailbox model's changes on a store at its floor (nothing above
// what badger needs for its own writes): what only changes or deletes
// records passes (flags, a move, expunge, subscriptions, a rename, a
// deleted folder: what a user does to free space), what adds data is
// refused with ErrNoSpace, temporary, and the DB keeps working (an
// append, a copy, a new folder); once space is back they pass again.
func TestMailboxChangesAtTheFloor(t *testing.T) {
	ctx := context.Background()
	s, fs, c, _ := newTestSpace(t, SpaceConfig{Store: "accounts"}, 1<<40)
	store, err := NewAccountStore(t.TempDir(), testPartitions, Options{ValueLogGCInterval: -1, Space: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	p, err := store.Open(1)
	if err != nil {
		t.Fatal(err)
	}
	acct := addrIn(1, testPartitions, 0, "full")
	if err := p.CreateAccount(ctx, Account{Address: acct}); err != nil {
		t.Fatal(err)
	}
	big := append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte("y"), 100<<10)...)
	for _, raw := range [][]byte{[]byte("Subject: a\r\n\r\na\r\n"), []byte("Subject: b\r\n\r\nb\r\n"),
		[]byte("Subject: c\r\n\r\nc\r\n"), big} {
		if _, err := p.Append(ctx, acct, AppendRequest{Raw: raw}); err != nil {
			t.Fatal(err)
		}
	}
	if _, d, err := p.CreateFolder(ctx, acct, "Old", ""); err != nil {
		t.Fatal(err)
	} else {
		durable(t, d)
	}
	inbox, _ := p.Folder(acct, Inbox)
	trash, _ := p.Folder(acct, "Trash")

	fs.avail.Store(s.Status().Floor)
	c.add(2 * spaceTTL)
	// A refusal comes when the batch is written: from the call, or from
	// its durable channel.
	noSpace := func(what string, d <-chan error, err error) {
		t.Helper()
		if err == nil && d != nil {
			err = <-d
		}
		if !errors.Is(err, ErrNoSpace) || !mail.IsTemporary(err) || errors.Is(err, ErrFailed) {
			t.Errorf("%s at the floor: %v, want a temporary ErrNoSpace", what, err)
		}
	}
	_, err = p.Append(ctx, acct, AppendRequest{Raw: []byte("Subject: new\r\n\r\nnew\r\n")})
	noSpace("an append", nil, err)
	_, d, err := p.CopyMessages(ctx, acct, inbox.ID, []uint32{1}, trash.ID, false, 0)
	noSpace("a copy", d, err)
	_, d, err = p.CreateFolder(ctx, acct, "New", "")
	noSpace("a new folder", d, err)
	if _, err := p.Folder(acct, "New"); !errors.Is(err, mail.ErrNotFound) {
		t.Errorf("the refused folder: %v, want not found", err)
	}

	passes := func(what string, d <-chan error, err error) {
		t.Helper()
		if err == nil && d != nil {
			err = <-d
		}
		if err != nil {
			t.Errorf("%s at the floor: %v", what, err)
		}
	}
	_, d, err = p.StoreFlags(ctx, acct, inbox.ID, []uint32{1, 2, 4}, FlagsAdd, []string{`\Deleted`})
	passes("STORE +FLAGS", d, err)
	_, d, err = p.CopyMessages(ctx, acct, inbox.ID, []uint32{3}, trash.ID, true, 0)
	passes("a move", d, err)
	got, d, err := p.Expunge(ctx, acct, inbox.ID, nil)
	passes("EXPUNGE", d, err)
	if fmt.Sprint(got) != "[1 2 4]" {
		t.Errorf("expunged %v, want [1 2 4]", got)
	}
	d, err = p.SubscribeFolder(ctx, acct, "Old", false)
	passes("UNSUBSCRIBE", d, err)
	d, err = p.RenameFolder(ctx, acct, "Old", "Older")
	passes("RENAME", d, err)
	d, err = p.DeleteFolder(ctx, acct, "Older")
	passes("DELETE", d, err)
	if _, n, err := p.Usage(acct); err != nil || n != 1 {
		t.Errorf("usage after the changes: %d messages, %v; want 1 (the moved one)", n, err)
	}

	fs.avail.Store(1 << 40)
	c.add(2 * spaceTTL)
	if _, err := p.Append(ctx, acct, AppendRequest{Raw: []byte("Subject: new\r\n\r\nnew\r\n")}); err != nil {
		t.Fatalf("an append once space is back: %v", err)
	}
	if _, d, err := p.CopyMessages(ctx, acct, trash.ID, []uint32{1}, inbox.ID, false, 0); err != nil {
		t.Fatalf("a copy once space is back: %v", err)
	} else {
		durable(t, d)
	}
}
