//go:build !unix

package storage

// probeLock does nothing where badger's directory lock is not a flock;
// badger.Open still takes its own lock.
func probeLock(string) (release func(), err error) { return func() {}, nil }

// sameDevice cannot tell here; Append links and falls back to a copy.
func sameDevice(a, b string) bool { return true }

// SameFilesystem cannot tell here: true.
func SameFilesystem(a, b string) bool { return true }
