// Package clock is a fake clock for tests. Code under test that takes the
// time as a func() time.Time is given c.Now, and the test moves the time
// with Advance instead of waiting for it:
//
//	c := clock.New(time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC))
//	cfg.Now = c.Now
//	...
//	c.Advance(15 * time.Minute) // the retry is due
//
// The clock only answers Now: it does not fire timers. It is safe for
// concurrent use. It imports nothing from Homing, so the tests of every
// package can use it.
package clock

import (
	"sync"
	"time"
)

// Clock is a fake time source that moves only when told to.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Start is the time of a clock made with New(time.Time{}).
var Start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// New returns a clock showing start (Start when start is the zero time).
func New(start time.Time) *Clock {
	if start.IsZero() {
		start = Start
	}
	return &Clock{now: start}
}

// Now returns the clock's time. A method value, c.Now, is a func()
// time.Time for the code under test.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time. It
// panics if d is negative: use Set to go back.
func (c *Clock) Advance(d time.Duration) time.Time {
	if d < 0 {
		panic("clock: Advance by a negative duration; use Set to go back")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set makes the clock show t, which may be earlier than what it showed.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
