//go:build unix

package storage

import "golang.org/x/sys/unix"

// sameDevice reports whether the directories a and b are on one
// filesystem (so a hard link from one to the other can work).
func sameDevice(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev
}
