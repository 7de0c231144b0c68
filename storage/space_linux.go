package storage

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// statfs returns the bytes available to an unprivileged process on the
// filesystem of dir (f_bavail: what root may still use beyond it is not
// counted) and its size.
func statfs(dir string) (avail, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	unit := st.Frsize
	if unit <= 0 {
		unit = st.Bsize
	}
	return int64(st.Bavail) * unit, int64(st.Blocks) * unit, nil
}

// deviceOf returns the device number of the filesystem holding dir.
func deviceOf(dir string) (uint64, bool) {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return 0, false
	}
	return uint64(st.Dev), true
}

// fallocate allocates the bytes [off, off+n) of the file at path (its size
// is not changed when the range is inside it). errNoPrealloc: the
// filesystem cannot.
func fallocate(path string, off, n int64) error {
	// A plain descriptor: os.OpenFile would register it with the
	// runtime's poller (epoll_ctl, fcntl), for nothing.
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		err = unix.Fallocate(fd, 0, off, n)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return errNoPrealloc
	}
	return err
}

// allocateFile creates path with n allocated bytes (fallocate, or zeros
// written where the filesystem cannot preallocate).
func allocateFile(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = unix.Fallocate(int(f.Fd()), 0, 0, n)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		err = writeZeros(f, n)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
