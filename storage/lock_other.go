//go:build !linux

package storage

import (
	"errors"
	"os"
	"syscall"
)

// errNoLock: this platform has no lock Homing trusts for a fence.
var errNoLock = errors.New("open file description locks are Linux only")

// lockOFD fails where there are no OFD locks: the partition fence needs
// them (Homing runs on Linux).
func lockOFD(*os.File) error { return errNoLock }

// flockDir: there is no legacy lock to respect here.
func flockDir(*os.File) error { return syscall.EOPNOTSUPP }
