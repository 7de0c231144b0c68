//go:build !unix

package storage

// sameDevice cannot tell here; Append links and falls back to a copy.
func sameDevice(a, b string) bool { return true }

// SameFilesystem cannot tell here: true.
func SameFilesystem(a, b string) bool { return true }
