package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The directory lock.
//
// Every database directory has Homing's own lock file, dir/homing.lock,
// opened read-write and locked with an open file description lock
// (fcntl F_OFD_SETLK, exclusive, whole file, never waiting). While one
// open holds it, every other open of the directory, in this process or
// another, on this host or (on a filesystem whose locks are shared, such as
// NFSv4, CephFS or GlusterFS) on another host, fails with ErrLocked. badger
// is then opened with its own directory lock bypassed
// (Options.WithBypassLockGuard), only because this one is held.
//
// Why not badger's lock: it is flock(LOCK_EX) on the directory opened
// read-only. Linux NFS clients emulate flock with byte-range locks, which
// need a descriptor open for writing: on NFSv4 it fails with EBADF, and
// with the nolock or local_lock mounts it is a local lock only. OFD locks
// are byte-range locks (so an NFS client sends them to the server), they
// belong to the open file description (closing another descriptor of the
// same file, as reading the epoch does, does not drop them, unlike classic
// POSIX locks), and they conflict between two opens within one process.
//
// Contention and failure are told apart: EAGAIN or EACCES means the lock
// is held by another open (ErrLocked: wait, a handoff is in progress); any
// other error (EBADF, ENOLCK, EIO, EOPNOTSUPP ...) means the lock cannot
// be taken here at all (ErrLockFailed: reported, not retried as
// contention).
//
// A rolling upgrade: a process of an older Homing holds badger's flock on
// the directory and knows nothing of homing.lock. So the lock also takes
// that flock (legacy), and a flock that is held (EWOULDBLOCK) is
// contention too; an older process that starts later finds the flock held
// and does not open the directory either. Where the filesystem cannot
// flock a read-only descriptor (EBADF, ENOLCK, EOPNOTSUPP, EINVAL: NFSv4),
// the legacy lock is skipped: badger's own lock fails the same way there,
// so no older Homing can have the directory open.

// lockFileName is Homing's lock file inside every database directory.
const lockFileName = "homing.lock"

// Lock kinds, as a lockHook sees them.
const (
	lockKindOFD    = "ofd"
	lockKindLegacy = "flock"
)

// lockHook, when set (by tests only, through Options.lockHook), is called
// before each lock call with its kind; a non-nil result is used as that
// call's error instead of calling the kernel.
type lockHook func(kind string) error

// dirLock is a held lock on a database directory.
type dirLock struct {
	f      *os.File // dir/homing.lock, open read-write, OFD-locked
	legacy *os.File // dir, flocked as badger does; nil where it cannot be
}

// acquireDirLock takes the lock on dir (which must exist) without waiting,
// and records the holder (owner, pid, host, time) in the lock file for the
// error another open will report.
func acquireDirLock(dir, owner string, hook lockHook) (*dirLock, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	err = callLock(hook, lockKindOFD, func() error { return lockOFD(f) })
	if err != nil {
		f.Close()
		if isContention(err) {
			return nil, fmt.Errorf("storage: open %s: %w: %s (%v)", dir, ErrLocked, holder(path), err)
		}
		return nil, fmt.Errorf("storage: open %s: %w: %s: %w", dir, ErrLockFailed, lockFileName, err)
	}
	l := &dirLock{f: f}
	if l.legacy, err = legacyLock(dir, hook); err != nil {
		l.release()
		return nil, err
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("owner=%s pid=%d host=%s since=%s\n", owner, os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(info), 0) // for messages only; not needed durable
	}
	return l, nil
}

// legacyLock takes badger's flock on dir, the lock an older Homing holds.
func legacyLock(dir string, hook lockHook) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	err = callLock(hook, lockKindLegacy, func() error { return flockDir(d) })
	switch {
	case err == nil:
		return d, nil
	case isContention(err):
		d.Close()
		return nil, fmt.Errorf("storage: open %s: %w: badger's directory lock is held (an older Homing, or another program using badger) (%v)",
			dir, ErrLocked, err)
	case errors.Is(err, syscall.EBADF), errors.Is(err, syscall.ENOLCK), errors.Is(err, syscall.EOPNOTSUPP),
		errors.Is(err, syscall.EINVAL):
		// badger's own lock cannot work here: no older Homing has it.
		d.Close()
		return nil, nil
	default:
		d.Close()
		return nil, fmt.Errorf("storage: open %s: %w: badger's directory lock: %w", dir, ErrLockFailed, err)
	}
}

func callLock(hook lockHook, kind string, lock func() error) error {
	if hook != nil {
		if err := hook(kind); err != nil {
			return err
		}
	}
	return lock()
}

// isContention reports whether a lock call's error means "held by another
// open".
func isContention(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EWOULDBLOCK)
}

// holder describes who holds the lock file at path, from what it wrote.
func holder(path string) string {
	b, err := os.ReadFile(path)
	b = bytes.TrimSpace(b)
	if err != nil || len(b) == 0 || len(b) > 512 {
		return "held by another open"
	}
	return "held by " + strings.ReplaceAll(string(b), "\n", " ")
}

// release drops the lock (closing the descriptors releases both locks).
func (l *dirLock) release() error {
	var errs []error
	if l.legacy != nil {
		errs = append(errs, l.legacy.Close())
		l.legacy = nil
	}
	if l.f != nil {
		errs = append(errs, l.f.Close())
		l.f = nil
	}
	return errors.Join(errs...)
}
