package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A process killed between a new memtable's or value log's create and
// its truncate (kill -9 at that moment, as the soak found) leaves an
// empty file behind. The DB opens anyway, with everything it had, and
// takes writes again: upstream badger refused to open it ever again
// ("while opening fid: N err: Create a new file").
func TestDBOpensAfterACrashLeftAnEmptyWALOrValueLog(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "db")
	opt := Options{ValueLogGCInterval: -1}
	small, big := "small value", strings.Repeat("b", 4<<10) // in the tree; in the value log
	write := func(db *DB, from, to int) {
		t.Helper()
		var b Batch
		for i := from; i < to; i++ {
			b.Set(fmt.Appendf(nil, "s%04d", i), []byte(small))
			b.Set(fmt.Appendf(nil, "b%04d", i), []byte(big))
		}
		if err := db.Commit(ctx, &b); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	check := func(db *DB, n int) {
		t.Helper()
		for i := range n {
			if got := mustGet(t, db, fmt.Sprintf("s%04d", i)); got != small {
				t.Fatalf("s%04d = %q", i, got)
			}
			if got := mustGet(t, db, fmt.Sprintf("b%04d", i)); got != big {
				t.Fatalf("b%04d = %d bytes, want %d", i, len(got), len(big))
			}
		}
	}
	maxID := func(ext string) (id int) {
		m, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
		for _, p := range m {
			var n int
			if _, err := fmt.Sscanf(filepath.Base(p), "%d", &n); err == nil {
				id = max(id, n)
			}
		}
		return id
	}
	plant := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	db, err := Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	write(db, 0, 100)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// What the crash leaves: the next WAL and the next value log, created
	// and still empty.
	plant(fmt.Sprintf("%05d.mem", maxID(".mem")+1))
	plant(fmt.Sprintf("%06d.vlog", maxID(".vlog")+1))

	for round := 1; round <= 2; round++ {
		db, err = Open(dir, opt)
		if err != nil {
			t.Fatalf("open %d after the crash: %v", round, err)
		}
		check(db, 100*round)
		write(db, 100*round, 100*(round+1))
		check(db, 100*(round+1))
		if err := db.Close(); err != nil {
			t.Fatalf("close %d: %v", round, err)
		}
	}
	empty, _ := filepath.Glob(filepath.Join(dir, "*.mem"))
	for _, p := range empty {
		if fi, err := os.Stat(p); err == nil && fi.Size() == 0 {
			t.Errorf("%s is still there, empty", filepath.Base(p))
		}
	}
}
