package actorstest

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/homing-mail/homing/mail"
)

// Submitter is an actors.Submitter that records what is submitted and
// fails on demand. A submission runs the hook (SetSubmitHook), then fails
// with an injected error if one is due, else passes the message on to the
// next submitter (nil: none, the submission succeeds). Submitted lists the
// submissions that succeeded, Calls counts them all.
type Submitter struct {
	next interface {
		Submit(context.Context, *mail.Message) error
	}

	mu        sync.Mutex
	fail      failures
	hook      func(*mail.Message)
	calls     int
	submitted []*mail.Message
	changed   signal
}

// NewSubmitter returns a Submitter that passes every submission it does
// not fail on to next (an *actors.System, say), or takes it itself when
// next is nil.
func NewSubmitter(next interface {
	Submit(context.Context, *mail.Message) error
}) *Submitter {
	return &Submitter{next: next}
}

// FailSubmits makes the next n submissions fail with err (after the hook,
// before the next submitter sees them).
func (s *Submitter) FailSubmits(n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail.failNext(n, err)
}

// FailSubmitAfter lets the next n successful submissions through and fails
// every later one with err, until FailSubmitAfter(-1, nil) or Heal.
func (s *Submitter) FailSubmitAfter(n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail.failAfter(n, err)
}

// Heal cancels every injected failure.
func (s *Submitter) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail.heal()
}

// SetSubmitHook sets a function that runs at the start of every
// submission, outside the fake's lock: it may block. Nil removes it.
func (s *Submitter) SetSubmitHook(h func(*mail.Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

// Submit implements actors.Submitter.
func (s *Submitter) Submit(ctx context.Context, msg *mail.Message) error {
	s.mu.Lock()
	s.calls++
	hook := s.hook
	s.mu.Unlock()
	s.changed.broadcast()
	if hook != nil {
		hook(msg)
	}
	// A copy taken before the next submitter owns msg.
	body, err := mail.ReadBody(msg.Body)
	if err != nil {
		return err
	}
	cp := &mail.Message{Envelope: msg.Envelope.Clone(), Body: mail.BytesBody(slices.Clone(body))}

	s.mu.Lock()
	err = s.fail.take()
	s.mu.Unlock()
	if err == nil && s.next != nil {
		err = s.next.Submit(ctx, msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.changed.broadcast()
	if err != nil {
		return err
	}
	s.fail.succeeded()
	s.submitted = append(s.submitted, cp)
	return nil
}

// Submitted returns the messages submitted successfully, in order (copies
// taken at submission).
func (s *Submitter) Submitted() []*mail.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.submitted)
}

// Calls is the number of submissions, failed ones included.
func (s *Submitter) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Wait returns once cond holds, checking it whenever a submission starts
// or ends, and fails t if it does not hold within WaitTimeout.
func (s *Submitter) Wait(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	await(t, &s.changed, cond, format, args...)
}
