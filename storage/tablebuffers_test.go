package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/wait"
)

// Two DBs build their tables in one TableBuffers. Closing one leaves the
// buffers to the other, whose memtable flushes still build tables
// (badger releases its own pool when its database closes: a shared one
// must stay until its owner closes it), and both DBs read back what they
// wrote.
func TestTableBuffersOutliveEachDBThatSharesThem(t *testing.T) {
	ctx := context.Background()
	tb := NewTableBuffers()
	defer tb.Close()
	opt := Options{MemTableSize: MinMemTableSize, TableBuffers: tb, ValueLogGCInterval: -1}
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	value := []byte(strings.Repeat("v", 200)) // in the tree, not the value log
	fill := func(db *DB, n int) {
		t.Helper()
		for i := 0; i < n; i += 100 {
			var b Batch
			for j := i; j < i+100; j++ {
				b.Set(fmt.Appendf(nil, "k%06d", j), value)
			}
			if err := db.Commit(ctx, &b); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
	}
	tables := func(dir string) int {
		m, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
		return len(m)
	}
	a, err := Open(dirA, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(dirB, opt)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000 // ~4.4 MB: several 1 MiB memtables
	fill(a, n)
	wait.For(t, 30*time.Second, func() bool { return tables(dirA) > 0 }, "a's memtables were never flushed")
	if err := a.Close(); err != nil {
		t.Fatalf("closing a: %v", err)
	}
	before := tables(dirB)
	fill(b, n)
	wait.For(t, 30*time.Second, func() bool { return tables(dirB) > before }, "b's memtables were never flushed after a closed")
	if err := b.Close(); err != nil {
		t.Fatalf("closing b: %v", err)
	}
	for _, dir := range []string{dirA, dirB} {
		db, err := Open(dir, opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, n / 2, n - 1} {
			if got := mustGet(t, db, fmt.Sprintf("k%06d", i)); got != string(value) {
				t.Errorf("%s: k%06d = %d bytes, want %d", dir, i, len(got), len(value))
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
