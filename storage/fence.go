package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// fence is one open's claim on a database directory: Homing's lock
// (lock.go) and the epoch this open wrote (epoch.go).
type fence struct {
	dir   string
	lock  *dirLock
	epoch uint64
	// file is the epoch file's path and written the bytes this open wrote
	// there: while the file holds exactly them, the epoch is this open's
	// (check's fast path: one open and read, no decoding).
	file    string
	written []byte
	// held is the epoch file kept open on a local filesystem (check's
	// faster path, fencelocal_linux.go); nil elsewhere.
	held *heldEpoch
}

// takeFence locks dir (creating it) and increments its epoch. It fails
// with ErrLocked while another open holds the directory, with
// ErrLockFailed when the lock cannot be taken at all, with ErrNoSpace
// when the filesystem has no room for an open (opt.Space, space.go) or
// for the epoch, and with the I/O error when the epoch cannot be written.
func takeFence(dir string, opt Options) (*fence, error) {
	// The epoch is written here, and badger.Open writes through mappings
	// (space.go): neither on a filesystem without the room for it.
	if err := opt.Space.canOpen(); err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	lock, err := acquireDirLock(dir, opt.Owner, opt.lockHook)
	if err != nil {
		return nil, err
	}
	epoch, written, err := bumpEpoch(dir, opt.Owner)
	if err != nil {
		_ = lock.release()
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return nil, fmt.Errorf("storage: open %s: %w: %w", dir, ErrNoSpace, err)
		}
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	file := filepath.Join(dir, epochFileName)
	return &fence{dir: dir, lock: lock, epoch: epoch, file: file, written: written,
		held: holdEpoch(dir, file, written)}, nil
}

// check returns nil while dir's epoch is still this open's, an error
// wrapping ErrFenced once another open wrote a newer one, or the error
// that kept it from reading the epoch.
func (f *fence) check() error {
	// Measured (BenchmarkFenceCheck): 10 us a check decoding the JSON
	// each time, the committer's most frequent system call path.
	if f.held != nil && f.held.unchanged(f.file) {
		return nil
	}
	if sameEpochFile(f.file, f.written) {
		return nil
	}
	r, err := readEpoch(f.dir)
	if err != nil {
		return err
	}
	if r.Epoch == 0 {
		// This open wrote one: the directory was removed, or replaced
		// by one without it, under the open (whose files may now be
		// unlinked: nothing written through them would survive).
		return fmt.Errorf("%w: %s no longer holds its epoch file (the directory was removed or replaced under this open, whose epoch is %d)",
			ErrFenced, f.dir, f.epoch)
	}
	if r.Epoch != f.epoch {
		return fmt.Errorf("%w: %s has epoch %d (opened by %q, pid %d on %s, at %s); this open's is %d",
			ErrFenced, f.dir, r.Epoch, r.Owner, r.PID, r.Host, r.Opened.Format("2006-01-02T15:04:05.000Z"), f.epoch)
	}
	return nil
}

// release drops the lock.
func (f *fence) release() error {
	if f == nil || f.lock == nil {
		return nil
	}
	f.held.close()
	f.held = nil
	err := f.lock.release()
	f.lock = nil
	if err != nil {
		return errors.Join(fmt.Errorf("storage: releasing the lock of %s", f.dir), err)
	}
	return nil
}

// sharedCheck runs a check once for every caller that asked before it
// started: the checks after a shared sync round (commit.go), one per group
// of the round, become one per DB and round. A caller never takes the
// result of a check that had started before it asked (that one may have
// read the epoch before the caller's sync): it joins the next, which
// starts when the running one is over.
type sharedCheck struct {
	mu      sync.Mutex
	next    *checkRound // not started yet: callers join it
	running *checkRound
}

type checkRound struct {
	done chan struct{}
	err  error
}

func (s *sharedCheck) do(check func() error) error {
	s.mu.Lock()
	if r := s.next; r != nil {
		s.mu.Unlock()
		<-r.done
		return r.err
	}
	r := &checkRound{done: make(chan struct{})}
	s.next = r
	prev := s.running
	s.mu.Unlock()
	if prev != nil {
		<-prev.done
	}
	s.mu.Lock()
	s.next, s.running = nil, r
	s.mu.Unlock()
	r.err = check()
	close(r.done)
	return r.err
}
