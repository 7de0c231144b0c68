// Package wait polls conditions with a deadline, for tests: For waits until
// a condition holds, Never and Consistently assert that one stays false (or
// true) for a while, which is how a test says "nothing else happens".
//
// A condition is polled at once and then at a short interval (1 ms,
// doubling to 25 ms), never with a bare sleep: the condition decides when
// the wait is over, the deadline only when it has failed.
//
// It imports nothing from Homing, so the tests of every package can use it.
package wait

import (
	"fmt"
	"testing"
	"time"
)

// The polling interval starts at firstInterval and doubles up to
// maxInterval.
const (
	firstInterval = time.Millisecond
	maxInterval   = 25 * time.Millisecond
)

// For polls cond until it returns true, and fails the test with
// t.Fatalf if it has not within timeout: the message is msg formatted
// with args, and says how long it waited. Args are formatted when the
// wait fails, so a Lazy argument shows the state at that moment.
//
//	wait.For(t, 5*time.Second, func() bool { return db.Stats().GCRuns > 0 }, "a value-log GC run")
//
// Call it from the goroutine running the test.
func For(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	start := time.Now()
	if poll(timeout, cond) {
		return
	}
	t.Fatalf("not within %v (gave up after %v): %s", timeout, since(start), fmt.Sprintf(msg, args...))
}

// Never polls cond for the whole of within and fails the test with
// t.Fatalf as soon as it returns true: an absence check ("no second
// delivery arrives"). It returns after within when cond stayed false.
// The message says what happened and when.
func Never(t testing.TB, within time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	start := time.Now()
	if poll(within, cond) {
		t.Fatalf("happened after %v (want never within %v): %s", since(start), within, fmt.Sprintf(msg, args...))
	}
}

// Consistently polls cond for the whole of within and fails the test with
// t.Fatalf as soon as it returns false: cond must hold throughout ("the
// node stays the owner"). It returns after within when cond held.
func Consistently(t testing.TB, within time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	start := time.Now()
	if poll(within, func() bool { return !cond() }) {
		t.Fatalf("stopped holding after %v (want it to hold for %v): %s", since(start), within, fmt.Sprintf(msg, args...))
	}
}

// poll calls cond at once and then at the polling interval until it
// returns true or d has passed, and reports whether it returned true. The
// last call comes after the deadline, so a condition that became true as
// the time ran out is seen.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	interval := firstInterval
	var timer *time.Timer
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		if timer == nil {
			timer = time.NewTimer(min(interval, left))
			defer timer.Stop()
		} else {
			timer.Reset(min(interval, left))
		}
		<-timer.C // the polling interval: cond decides, not the clock
		interval = min(2*interval, maxInterval)
	}
}

// since is the time since start, rounded for messages.
func since(start time.Time) time.Duration {
	return time.Since(start).Round(time.Millisecond)
}

// Lazy is an argument for a failure message that is computed only when
// the message is formatted (when the wait fails), so it shows the state
// at the end of the wait rather than at its start:
//
//	wait.For(t, d, cond, "cluster not settled: %s", wait.Lazy(c.why))
func Lazy(f func() string) fmt.Stringer { return lazy(f) }

type lazy func() string

func (f lazy) String() string { return f() }
