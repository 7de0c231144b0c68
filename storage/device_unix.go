//go:build unix

package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

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
