package storage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/homing-mail/homing/testkit/damage"
)

// damagedFiles are the ways of damaging a database directory by one of the ways that
// made badger.Open panic or leak (see inspect.go).
var damagedFiles = []struct {
	name   string
	damage func(t *testing.T, dir string)
	says   string
}{
	{"truncated table", func(t *testing.T, dir string) { damage.TruncateTable(t, dir) }, "table 0"},
	{"emptied KEYREGISTRY", func(t *testing.T, dir string) { damage.EmptyKeyRegistry(t, dir) }, "KEYREGISTRY"},
	{"MANIFEST gone", func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, badger.ManifestFilename)); err != nil {
			t.Fatal(err)
		}
	}, "badger would delete them"},
}

// A queue whose files are damaged does not open: an error wrapping
// ErrDamaged that names the file, no panic, no goroutine left behind
// (goleak in TestMain), and the files are left as they are (the tables
// are not deleted).
func TestOpenQueueWithDamagedFiles(t *testing.T) {
	for _, tc := range damagedFiles {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			queueWith(t, dir, markedBody("body", 200), markedBody("body", 5000))
			tc.damage(t, dir)
			for range 3 { // a partition actor tries again and again
				q, err := OpenQueue(dir, Options{})
				if err == nil {
					q.Close()
					t.Fatal("a damaged queue opened")
				}
				if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("OpenQueue = %v; want ErrDamaged naming %s and saying %q", err, dir, tc.says)
				}
			}
			if tables, _ := filepath.Glob(filepath.Join(dir, "*.sst")); len(tables) == 0 {
				t.Fatal("the tables were deleted")
			}
		})
	}
}

// The same for one account partition: only it fails to open, the other
// partitions of the store open and serve.
func TestOpenPartitionWithDamagedFiles(t *testing.T) {
	for _, tc := range damagedFiles {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s, err := NewAccountStore(root, 2, Options{ValueLogGCInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			addrs := []string{addrIn(0, 2, 0, "u"), addrIn(1, 2, 0, "u")}
			for id, a := range addrs {
				p, err := s.Open(id)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.CreateAccount(context.Background(), Account{Address: a}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, filepath.Join(root, "p0001"))
			s, err = NewAccountStore(root, 2, Options{ValueLogGCInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Open(1); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "partition 1") {
				t.Fatalf("Open(1) = %v; want ErrDamaged for partition 1", err)
			}
			p, err := s.Open(0)
			if err != nil {
				t.Fatalf("the undamaged partition: %v", err)
			}
			if _, err := p.Account(addrs[0]); err != nil {
				t.Fatalf("the undamaged partition's account: %v", err)
			}
			if _, err := s.Open(1); !errors.Is(err, ErrDamaged) {
				t.Fatalf("Open(1) again = %v; want ErrDamaged (not 'already open')", err)
			}
		})
	}
}

// Why inspect exists: badger.Open itself, given a truncated table, panics
// in a goroutine of its own, which kills the process (a child process here).
// If badger ever returns an error instead, this test fails and the
// inspection before Open may be revisited.
func TestBadgerOpenCrashesOnTruncatedTable(t *testing.T) {
	dir := t.TempDir()
	queueWith(t, dir, markedBody("body", 200))
	damage.TruncateTable(t, dir)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+helperBadgerOpen, helperDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "panic") {
		t.Fatalf("badger.Open of a truncated table in a child: %v, stderr %q; want a crash with a panic", err, out)
	}
}

// A panic of badger.Open in the caller's goroutine is an error wrapping
// ErrDamaged, not a crash.
func TestOpenBadgerRecoversPanic(t *testing.T) {
	opt := badgerOptions(t.TempDir(), Options{}.normalized(), queueProfile, &badgerLogger{log: Options{}.normalized().Logger})
	_, err := openBadger(func(badger.Options) (*badger.DB, error) {
		panic("runtime error: slice bounds out of range [-15111570:]\n== Recovering ==\nmore")
	}, opt)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "slice bounds out of range") || strings.Contains(err.Error(), "==") {
		t.Fatalf("openBadger of a panicking open = %v", err)
	}
}
