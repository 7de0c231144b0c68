// Package durable writes small files so that a crash leaves either the
// old content or the new, never a torn file: written to PATH.tmp,
// fsynced, renamed over PATH, and the directory fsynced so the rename
// itself survives (rename(2) is atomic; its durability needs the
// directory's fsync). It imports nothing of Homing's.
package durable

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with data (mode perm for a new file). On any
// error the old file is left as it was and the temporary file removed.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
