package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/homing-mail/homing/mail"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it at the end of the test. It skips the test, saying why, where
// mounting is not permitted (it needs root, or CAP_SYS_ADMIN); CI runs as
// root and runs it.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			t.Skipf("mounting a tmpfs is not permitted here (needs root or CAP_SYS_ADMIN): %v", err)
		}
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// fillUp takes every free byte of the filesystem of dir with a file of
// its own (fallocate: at once) and returns its name.
func fillUp(t *testing.T, dir, name string) string {
	t.Helper()
	avail, _, err := statfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if avail > 0 {
		if err := allocateFile(path, avail); err != nil {
			t.Fatalf("filling %s: %v", dir, err)
		}
	}
	if avail, _, _ = statfs(dir); avail != 0 {
		t.Fatalf("%d bytes still free after filling", avail)
	}
	return path
}

// The probe of issue #9 at the storage layer: a queue on a small tmpfs
// takes messages whose bodies are in badger's value log (20 KiB, below
// the inline threshold) until its filesystem is full. Before, the next
// write died with SIGBUS in valueLog.write, and every open after it in
// logFile.iterate. Now: every write either succeeds or fails with
// ErrNoSpace (the DB stays healthy, no ErrFailed); when another program
// takes the last byte, the DB still refuses cleanly and serves every
// stored body; a start on the full disk (its Space removes the reserve
// file) opens and reads; once space is freed, writes work again without a
// reopen.
func TestFullTmpfsIsAnErrorNotSIGBUS(t *testing.T) {
	fsDir := mountTmpfs(t, 24<<20)
	ctx := context.Background()
	cfg := SpaceConfig{Store: "queue", MinFree: 4 << 20, Reserve: 2 << 20, ReservePath: filepath.Join(fsDir, ReserveName)}
	space, err := NewSpace(fsDir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	qdir := filepath.Join(fsDir, "queue")
	q, err := OpenQueue(qdir, Options{ValueLogGCInterval: -1, Space: space})
	if err != nil {
		t.Fatal(err)
	}
	body := func(i int) []byte {
		return append([]byte(fmt.Sprintf("Subject: %d\r\n\r\n", i)), bytes.Repeat([]byte("b"), 20<<10)...)
	}
	put := func(i int) error {
		env := &mail.Envelope{ID: fmt.Sprintf("m%05d", i), From: "a@example.net", Received: time.Now(),
			Recipients: []*mail.Recipient{{Addr: "b@example.test", State: mail.StatePending}}}
		return q.Put(ctx, &mail.Message{Envelope: env, Body: mail.BytesBody(body(i))})
	}
	stored := 0
	for ; stored < 5000; stored++ {
		if err := put(stored); err != nil {
			if !errors.Is(err, ErrNoSpace) {
				t.Fatalf("message %d: %v, want ErrNoSpace", stored, err)
			}
			break
		}
	}
	if stored == 0 || stored == 5000 {
		t.Fatalf("%d messages stored on a 24 MiB filesystem", stored)
	}
	t.Logf("%d messages of 20 KiB stored, then ErrNoSpace", stored)
	if err := q.DB().Err(); err != nil {
		t.Fatalf("the queue failed: %v", err)
	}
	readAll := func(q *QueueStore, n int) {
		t.Helper()
		for i := range n {
			b, err := q.Body(fmt.Sprintf("m%05d", i))
			if err != nil {
				t.Fatalf("body %d: %v", i, err)
			}
			got, err := mail.ReadBody(b)
			if err != nil || !bytes.Equal(got, body(i)) {
				t.Fatalf("body %d: %d bytes, %v", i, len(got), err)
			}
		}
	}
	readAll(q, stored)

	// Another program takes every byte left (the reserve goes to the
	// stores): writes are refused, never a fault.
	filler := fillUp(t, fsDir, "filler")
	space.Tick()
	for i := stored; i < stored+20; i++ {
		if err := put(i); !errors.Is(err, ErrNoSpace) && err != nil {
			t.Fatalf("a write on the full disk: %v", err)
		}
	}
	var del Batch
	del.maintenance = true
	del.Delete(key(prefixEnvelope, "nothing"))
	_ = q.DB().Commit(ctx, &del) // a deletion: taken or refused, never a fault
	readAll(q, stored)
	if err := q.Close(); err != nil {
		t.Fatalf("closing on the full disk: %v", err)
	}
	space.Close()

	// A start on the full disk: the reserve (if made again) goes first.
	fillUp(t, fsDir, "filler2")
	space, err = NewSpace(fsDir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer space.Close()
	q, err = OpenQueue(qdir, Options{ValueLogGCInterval: -1, Space: space})
	if errors.Is(err, ErrNoSpace) {
		// No reserve was left to remove (the filler took it): a clean
		// refusal; free a little, as an operator would.
		os.Remove(filepath.Join(fsDir, "filler2"))
		q, err = OpenQueue(qdir, Options{ValueLogGCInterval: -1, Space: space})
	}
	if err != nil {
		t.Fatalf("opening on the full disk: %v", err)
	}
	defer q.Close()
	readAll(q, stored)
	os.Remove(filepath.Join(fsDir, "filler2"))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	space.Tick()
	if err := put(stored); err != nil {
		t.Fatalf("space freed, no reopen: %v", err)
	}
}

// Allocation ahead: after a write, the current value log and WAL are
// allocated beyond what the write may have touched, by a chunk, and not
// as a whole (an idle DB allocates nothing).
func TestPreallocAllocatesAhead(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blocks := func(f *aheadFile) int64 {
		var st unix.Stat_t
		if err := unix.Stat(f.path(dir, f.fid), &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	if n := blocks(&db.pre.vlog); n > pageSlack {
		t.Errorf("an idle DB's value log holds %d bytes", n)
	}
	var b Batch
	b.Set([]byte("big"), bytes.Repeat([]byte("v"), 600<<10))
	b.Set([]byte("small"), []byte("s"))
	if err := db.Commit(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	p := db.pre
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		t.Skip("this filesystem cannot preallocate")
	}
	for _, f := range []*aheadFile{&p.vlog, &p.wal} {
		if f.alloc < f.written+preallocChunk || blocks(f) < f.alloc {
			t.Errorf("%s: written <= %d, allocated %d (%d blocks' worth); want a chunk beyond", f.ext, f.written, f.alloc, blocks(f))
		}
		if f.alloc >= f.size {
			t.Errorf("%s: the whole mapping (%d bytes) allocated", f.ext, f.size)
		}
	}
	if p.vlog.written < 600<<10 {
		t.Errorf("value log bound %d for a 600 KiB value", p.vlog.written)
	}
}

// badger starts new memtables (and WALs) by itself; the allocation ahead
// follows it to the newest WAL, allocates there, and counts the rotated
// ones as not flushed until badger deletes them.
func TestPreallocFollowsRotations(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{ValueLogGCInterval: -1, MemTableSize: MinMemTableSize})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	first := db.pre.wal.fid
	for i := range 400 { // ~4 MiB of values below the threshold: the WAL
		var b Batch
		for j := range 10 {
			b.Set([]byte(fmt.Sprintf("k%05d-%d", i, j)), bytes.Repeat([]byte("w"), 900))
		}
		if err := db.Commit(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	p := db.pre
	p.mu.Lock()
	fid, alloc, written := p.wal.fid, p.wal.alloc, p.wal.written
	p.mu.Unlock()
	if fid <= first {
		t.Fatalf("the WAL did not rotate (fid %d)", fid)
	}
	newest := -1
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		var id int
		if n, _ := fmt.Sscanf(e.Name(), "%05d.mem", &id); n == 1 {
			newest = max(newest, id)
		}
	}
	if fid != newest {
		t.Errorf("following WAL %d, the newest is %d", fid, newest)
	}
	if !p.off && alloc < written {
		t.Errorf("the current WAL: allocated %d, written up to %d", alloc, written)
	}
	if db.headroom() <= headroomBase {
		t.Errorf("headroom %d with memtables written", db.headroom())
	}
}
