// Package damage damages the files of a closed badger database the way a
// failing disk, a full filesystem or an operator's mistake does, for the
// tests of what Homing does about it: a value-log file truncated or
// overwritten in place, a table (.sst) cut short, an emptied KEYREGISTRY.
//
// Every function works on the files of one database directory (a queue
// store, or one account partition such as DATA/accounts/p0003), which must
// not be open, and fails the test when the damage cannot be made (no file
// holds the marker, no table exists): a test that damaged nothing would
// pass for the wrong reason.
//
// It imports nothing from Homing, so the tests of every package can use it.
package damage

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Find returns the file of dir whose name ends with ext (".vlog", ".sst")
// that holds marker, and the offset of the marker's first byte in it.
func Find(t testing.TB, dir, ext string, marker []byte) (path string, off int64) {
	t.Helper()
	for _, p := range files(t, dir, ext) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("damage: %v", err)
		}
		if i := bytes.Index(data, marker); i >= 0 {
			return p, int64(i)
		}
	}
	t.Fatalf("damage: no %s file in %s holds %q", ext, dir, marker)
	return "", 0
}

// TruncateValueLog cuts the value-log file of dir that holds marker in the
// middle of the marker: that value and every value after it in the file
// are gone, as after a crash on a filesystem that lost the file's tail or
// a disk that filled up.
func TruncateValueLog(t testing.TB, dir string, marker []byte) {
	t.Helper()
	path, off := Find(t, dir, ".vlog", marker)
	truncate(t, path, off+int64(len(marker)/2))
}

// Overwrite replaces every occurrence of marker in the files of dir whose
// name ends with ext with as many bytes of 'X': the file keeps its length
// and the value its size, only its bytes are wrong (a bad sector, a stray
// write).
func Overwrite(t testing.TB, dir, ext string, marker []byte) {
	t.Helper()
	n := 0
	for _, p := range files(t, dir, ext) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("damage: %v", err)
		}
		if c := bytes.Count(data, marker); c > 0 {
			n += c
			data = bytes.ReplaceAll(data, marker, bytes.Repeat([]byte{'X'}, len(marker)))
			write(t, p, data)
		}
	}
	if n == 0 {
		t.Fatalf("damage: no %s file in %s holds %q", ext, dir, marker)
	}
}

// TruncateTable cuts the largest table (.sst) of dir to half its size and
// returns its path.
func TruncateTable(t testing.TB, dir string) string {
	t.Helper()
	tables := files(t, dir, ".sst")
	if len(tables) == 0 {
		t.Fatalf("damage: no table in %s", dir)
	}
	var largest string
	var size int64 = -1
	for _, p := range tables {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			largest, size = p, fi.Size()
		}
	}
	truncate(t, largest, size/2)
	return largest
}

// EmptyKeyRegistry truncates dir's KEYREGISTRY to 0 bytes.
func EmptyKeyRegistry(t testing.TB, dir string) {
	t.Helper()
	path := filepath.Join(dir, "KEYREGISTRY")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("damage: %v", err)
	}
	truncate(t, path, 0)
}

func files(t testing.TB, dir, ext string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("damage: %v", err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ext) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out
}

func truncate(t testing.TB, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatalf("damage: %v", err)
	}
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("damage: %v", err)
	}
	if err := os.WriteFile(path, data, fi.Mode()); err != nil {
		t.Fatalf("damage: %v", err)
	}
}
