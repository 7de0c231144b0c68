package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maildirCounter counts the messages delivered into a set of Maildirs: a
// delivery agent writes a message into tmp/ and links it into new/
// (the Maildir protocol), so every file in a new/ directory is one
// delivered message. inotify tells when new/ changes, so the wait needs
// no polling interval; the count it reports is always read from the
// directories themselves.
type maildirCounter struct {
	dirs []string // the new/ directories

	f       *os.File      // the inotify descriptor (nonblocking, in Go's poller)
	events  atomic.Int64  // IN_CREATE/IN_MOVED_TO events seen
	lost    atomic.Bool   // the kernel's event queue overflowed
	changed chan struct{} // a token after every batch of events
	done    chan struct{} // closed when the reader has ended
	mu      sync.Mutex
	err     error // why the reader stopped early (not by close)
}

// newMaildirCounter watches the new/ directories dirs, which must exist.
func newMaildirCounter(dirs []string) (*maildirCounter, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	for _, d := range dirs {
		if _, err := unix.InotifyAddWatch(fd, d, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("watching %s: %w", d, err)
		}
	}
	c := &maildirCounter{dirs: dirs, f: os.NewFile(uintptr(fd), "inotify"),
		changed: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	return c, nil
}

// read consumes inotify events until the descriptor is closed. On an
// overflow of the kernel's queue it still signals: the count comes from
// the directories, so a lost event loses no message.
func (c *maildirCounter) read() {
	defer close(c.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				c.mu.Lock()
				c.err = fmt.Errorf("reading inotify events: %w", err)
				c.mu.Unlock()
			}
			c.signal()
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
				c.events.Add(1)
			}
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				c.lost.Store(true)
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		c.signal()
	}
}

func (c *maildirCounter) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Count reads the number of files in all the new/ directories.
func (c *maildirCounter) Count() (int64, error) {
	var total int64
	for _, d := range c.dirs {
		f, err := os.Open(d)
		if err != nil {
			return total, err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return total, fmt.Errorf("reading %s: %w", d, err)
		}
		total += int64(len(names))
	}
	return total, nil
}

// maildirWait is what wait saw.
type maildirWait struct {
	Delivered int64     // files in new/ at the end of the wait
	Reached   time.Time // when Delivered first was >= the target; zero if never
	Err       error     // why the target was not reached
}

// wait returns when the new/ directories hold want files, or timeout
// passes. It counts the directories only when inotify has seen as many
// new files as are still missing (each count is a scan of every
// directory), and at the end; after an overflow of inotify's queue, at
// every batch of events.
func (c *maildirCounter) wait(ctx context.Context, want int64, timeout time.Duration) maildirWait {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var w maildirWait
	for {
		if c.events.Load() >= want || c.lost.Load() {
			n, err := c.Count()
			w.Delivered, w.Err = n, err
			if err == nil && n >= want {
				w.Reached = time.Now()
				return w
			}
		}
		select {
		case <-c.changed:
		case <-c.done:
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			w.Delivered, _ = c.Count()
			if err == nil {
				err = errors.New("the maildir counter was closed")
			}
			w.Err = err
			return w
		case <-ctx.Done():
			n, err := c.Count()
			w.Delivered = n
			if err != nil {
				w.Err = err
				return w
			}
			if ctx.Err() == context.Canceled {
				w.Err = fmt.Errorf("%d of %d messages in the Maildirs' new/ when the run was canceled", n, want)
				return w
			}
			w.Err = fmt.Errorf("%d of %d messages in the Maildirs' new/ after %s", n, want, timeout)
			return w
		}
	}
}

// Close stops watching.
func (c *maildirCounter) Close() error {
	err := c.f.Close()
	<-c.done
	return err
}
