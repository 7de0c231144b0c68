//go:build linux

package storage

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFenceFastPathOnALocalFilesystem: on a local filesystem the fence
// keeps its epoch file open and a check is one stat while the path names
// that file unchanged; a newer epoch renamed into place (another open),
// or the file changed where it is, goes to the full check, which fences.
func TestFenceFastPathOnALocalFilesystem(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	f, err := takeFence(dir, Options{}.normalized())
	if err != nil {
		t.Fatal(err)
	}
	defer f.release()
	if !localFilesystem(int64(fs.Type)) {
		// The fast path must stay off where stat is not trusted.
		if f.held != nil {
			t.Fatalf("filesystem type %#x is not local, yet the fence holds its epoch file", fs.Type)
		}
		t.Logf("%s is on filesystem type %#x: the full check only", dir, fs.Type)
	} else {
		if f.held == nil {
			t.Fatalf("%s is on a local filesystem (%#x), yet the fence does not hold its epoch file", dir, fs.Type)
		}
		if !f.held.unchanged(f.file) {
			t.Fatal("the epoch file this open wrote does not count as unchanged")
		}
	}
	if err := f.check(); err != nil {
		t.Fatalf("check of an unchanged epoch: %v", err)
	}

	// Another open renames a newer epoch into place.
	r, err := readEpoch(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writeEpoch(dir, epochRecord{Epoch: r.Epoch + 1, Owner: "next", Opened: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if f.held != nil && f.held.unchanged(f.file) {
		t.Fatal("a newer epoch renamed into place counts as unchanged")
	}
	if err := f.check(); !errors.Is(err, ErrFenced) {
		t.Fatalf("check after a newer epoch = %v, want ErrFenced", err)
	}

	// The file changed where it is (the same inode): not unchanged either.
	g, err := takeFence(t.TempDir(), Options{}.normalized())
	if err != nil {
		t.Fatal(err)
	}
	defer g.release()
	if g.held != nil {
		if err := os.WriteFile(g.file, append(append([]byte(nil), g.written...), ' '), 0o600); err != nil {
			t.Fatal(err)
		}
		if g.held.unchanged(g.file) {
			t.Fatal("an epoch file grown in place counts as unchanged")
		}
	}
	if err := g.release(); err != nil {
		t.Fatal(err)
	}
	if g.held != nil {
		t.Fatal("release kept the epoch file open")
	}
}
