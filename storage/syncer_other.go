//go:build !linux

package storage

import "errors"

// NewSyncer is only available on Linux (syncfs(2)); elsewhere use the
// per-DB mode (Options.Syncer nil).
func NewSyncer(dir string) (*Syncer, error) {
	return nil, errors.New("storage: syncfs is only available on Linux")
}

// Covers reports whether dir is on the filesystem this Syncer flushes.
func (s *Syncer) Covers(dir string) bool { return false }
