package storage

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// NewSyncer returns a Syncer for the filesystem that holds dir. The
// directory is kept open for the Syncer's life (Close releases it).
func NewSyncer(dir string) (*Syncer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: syncer: %w", err)
	}
	fd := int(f.Fd())
	s := newSyncer(dir, func() error { return unix.Syncfs(fd) })
	s.closeFn = f.Close
	if st, err := f.Stat(); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			s.dev, s.hasDev = uint64(sys.Dev), true
		}
	}
	return s, nil
}

// Covers reports whether dir is on the filesystem this Syncer flushes.
func (s *Syncer) Covers(dir string) bool {
	if !s.hasDev {
		return false
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false
	}
	st, err := os.Stat(dir)
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && uint64(sys.Dev) == s.dev
}
