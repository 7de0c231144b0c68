package storage

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// lockOFD takes an exclusive open file description lock on all of f
// (F_OFD_SETLK: it fails at once with EAGAIN or EACCES when held).
func lockOFD(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: 0, Len: 0}
	return unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
}

// flockDir takes the exclusive flock badger takes on its directory.
func flockDir(d *os.File) error {
	return unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB)
}
