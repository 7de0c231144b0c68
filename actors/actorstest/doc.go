// Package actorstest has fakes of what package actors stands on, with
// failure injection, for tests of actors and of code built on it: an
// account partition (Partition, an actors.PartitionData), a queue store
// (Queue, an actors.QueueStore), a relayer (Relayer), a submitter
// (Submitter), a placement (Placement) and a transferer (Transferer, queue
// mode Remotely).
//
// Every fake is in memory, safe for concurrent use, and records what was
// done to it so that a test can assert on it afterwards; the Wait methods
// wait for an event (they do not sleep) and fail the test after
// WaitTimeout. Failure injection is explicit: nothing fails unless a test
// asks for it.
//
// The package does not import package actors (whose own tests use it):
// the fakes satisfy its interfaces structurally.
package actorstest

import (
	"sync"
	"testing"
	"time"
)

// WaitTimeout bounds every wait of this package. The waits are for things
// that take milliseconds; the bound only makes a test fail instead of hang.
const WaitTimeout = 10 * time.Second

// signal wakes every goroutine waiting for a fake to change.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// changed returns a channel closed at the next broadcast.
func (s *signal) changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// await returns once cond holds, checking it again at every broadcast of
// sig, and fails t if it does not hold within WaitTimeout.
func await(t testing.TB, sig *signal, cond func() bool, format string, args ...any) {
	t.Helper()
	timer := time.NewTimer(WaitTimeout)
	defer timer.Stop()
	for {
		ch := sig.changed() // before cond: a change in between is not missed
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("not within %v: "+format, append([]any{WaitTimeout}, args...)...)
		}
	}
}

// failures is the failure injection every fake shares: the next n calls
// fail (Next), and the calls after n more successful ones fail (After).
type failures struct {
	next []error
	// after: when armed, the calls after left more successful ones fail
	// with err.
	armed bool
	left  int
	err   error
}

func (f *failures) failNext(n int, err error) {
	for range n {
		f.next = append(f.next, err)
	}
}

func (f *failures) failAfter(n int, err error) {
	if n < 0 || err == nil {
		f.armed, f.err = false, nil
		return
	}
	f.armed, f.left, f.err = true, n, err
}

func (f *failures) heal() { *f = failures{} }

// take returns the error the call about to run must fail with, or nil.
func (f *failures) take() error {
	if len(f.next) > 0 {
		err := f.next[0]
		f.next = f.next[1:]
		return err
	}
	if f.armed && f.left == 0 {
		return f.err
	}
	return nil
}

// succeeded counts a call that returned no error.
func (f *failures) succeeded() {
	if f.armed && f.left > 0 {
		f.left--
	}
}

func resolved(err error) <-chan error {
	ch := make(chan error, 1)
	ch <- err
	return ch
}
