//go:build unix

package storage

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// probeLock takes the flock that badger takes on dir (exclusive, without
// waiting) and returns its release, or an error wrapping ErrLocked while
// another open holds it. openDB holds it while it inspects the files, so
// that it never reads the files of a database that another process is
// writing, and releases it just before badger.Open takes it again.
func probeLock(dir string) (release func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: open %s: %w (%v)", dir, ErrLocked, err)
	}
	return func() { f.Close() }, nil
}

// sameDevice reports whether the directories a and b are on one
// filesystem (so a hard link from one to the other can work).
func sameDevice(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev
}

// SameFilesystem reports whether the directories a and b (created if
// needed) are on one filesystem.
func SameFilesystem(a, b string) bool {
	_ = os.MkdirAll(a, 0o700)
	_ = os.MkdirAll(b, 0o700)
	return sameDevice(a, b)
}
