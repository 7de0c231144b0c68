//go:build !linux

package storage

import (
	"errors"
	"os"
)

// statfs is not implemented here: the guard is blind (Space.Status says
// so), and only the filesystem's own errors are seen.
func statfs(string) (int64, int64, error) {
	return 0, 0, errors.New("statfs is implemented on Linux only")
}

// deviceOf cannot tell here: each store has a Space of its own.
func deviceOf(string) (uint64, bool) { return 0, false }

func fallocate(string, int64, int64) error { return errNoPrealloc }

func allocateFile(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = writeZeros(f, n)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
