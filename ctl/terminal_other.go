//go:build !linux

package ctl

import "os"

// isTerminalFile reports whether f is a character device: a terminal,
// most likely (elsewhere than Linux the check is this coarse).
func isTerminalFile(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
