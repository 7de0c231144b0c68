package wait

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/failtb"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// trueFrom returns a condition that is false on its first n-1 calls and
// true from the n-th on, and the number of calls so far.
func trueFrom(n int64) (cond func() bool, calls *atomic.Int64) {
	calls = new(atomic.Int64)
	return func() bool { return calls.Add(1) >= n }, calls
}

func TestForReturnsAtOnceWhenTheConditionHolds(t *testing.T) {
	f := failtb.New(t)
	cond, calls := trueFrom(1)
	start := time.Now()
	msgs, returned := f.Run(func() { For(f, time.Minute, cond, "already true") })
	if !returned || len(msgs) != 0 {
		t.Fatalf("For: returned %v, failures %q; want a quiet return", returned, msgs)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("cond called %d times, want once", n)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("For took %v for a condition that held at once", d)
	}
}

func TestForPollsUntilTheConditionHolds(t *testing.T) {
	f := failtb.New(t)
	cond, calls := trueFrom(6)
	msgs, returned := f.Run(func() { For(f, time.Minute, cond, "true on the sixth poll") })
	if !returned || len(msgs) != 0 {
		t.Fatalf("For: returned %v, failures %q; want a quiet return", returned, msgs)
	}
	if n := calls.Load(); n != 6 {
		t.Errorf("cond called %d times, want 6 (no call after it held)", n)
	}
}

func TestForFailsWithTheMessageAndHowLongItWaited(t *testing.T) {
	f := failtb.New(t)
	start := time.Now()
	msgs, returned := f.Run(func() {
		For(f, 50*time.Millisecond, func() bool { return false }, "the %s to arrive", "reply")
	})
	waited := time.Since(start)
	if returned {
		t.Error("For returned after failing: want it to end the test's goroutine, as t.Fatalf does")
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0], "the reply to arrive") ||
		!strings.Contains(msgs[0], "not within 50ms") || !strings.Contains(msgs[0], "gave up after ") {
		t.Fatalf("failures = %q, want one with the message, the timeout and the time waited", msgs)
	}
	if waited < 50*time.Millisecond {
		t.Errorf("For gave up after %v, before its 50ms", waited)
	}
}

func TestForSeesAConditionThatHoldsAtTheDeadline(t *testing.T) {
	f := failtb.New(t)
	deadline := time.Now().Add(30 * time.Millisecond)
	msgs, returned := f.Run(func() {
		For(f, 30*time.Millisecond, func() bool { return !time.Now().Before(deadline) }, "the deadline")
	})
	if !returned || len(msgs) != 0 {
		t.Fatalf("For: returned %v, failures %q; want the last poll, after the deadline, to see the condition", returned, msgs)
	}
}

func TestForFormatsALazyArgumentWhenItFails(t *testing.T) {
	f := failtb.New(t)
	var state atomic.Int64
	msgs, _ := f.Run(func() {
		For(f, 20*time.Millisecond, func() bool { state.Add(1); return false },
			"state %s", Lazy(func() string { return fmt.Sprint("at the end: ", state.Load() > 1) }))
	})
	if len(msgs) != 1 || !strings.Contains(msgs[0], "state at the end: true") {
		t.Fatalf("failures = %q, want the lazy argument formatted after the polls", msgs)
	}
}

func TestNeverPassesAfterTheWholeTime(t *testing.T) {
	f := failtb.New(t)
	var calls atomic.Int64
	start := time.Now()
	msgs, returned := f.Run(func() {
		Never(f, 60*time.Millisecond, func() bool { calls.Add(1); return false }, "a second delivery")
	})
	if !returned || len(msgs) != 0 {
		t.Fatalf("Never: returned %v, failures %q; want a quiet return", returned, msgs)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("Never returned after %v, want at least 60ms", d)
	}
	if n := calls.Load(); n < 3 {
		t.Errorf("cond called %d times in 60ms, want it polled throughout", n)
	}
}

func TestNeverFailsWhenTheConditionBecomesTrue(t *testing.T) {
	f := failtb.New(t)
	cond, calls := trueFrom(4)
	msgs, returned := f.Run(func() { Never(f, time.Minute, cond, "a second %s", "delivery") })
	if returned {
		t.Error("Never returned after failing")
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0], "a second delivery") || !strings.Contains(msgs[0], "happened after ") ||
		!strings.Contains(msgs[0], "want never within 1m0s") {
		t.Fatalf("failures = %q, want one saying it happened, and when", msgs)
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("cond called %d times, want 4: Never fails at the first true", n)
	}
}

func TestConsistentlyPassesWhileTheConditionHolds(t *testing.T) {
	f := failtb.New(t)
	start := time.Now()
	msgs, returned := f.Run(func() {
		Consistently(f, 40*time.Millisecond, func() bool { return true }, "still the owner")
	})
	if !returned || len(msgs) != 0 {
		t.Fatalf("Consistently: returned %v, failures %q; want a quiet return", returned, msgs)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("Consistently returned after %v, want at least 40ms", d)
	}
}

func TestConsistentlyFailsWhenTheConditionStopsHolding(t *testing.T) {
	f := failtb.New(t)
	cond, _ := trueFrom(3) // true from the third call: false, false, true...
	msgs, returned := f.Run(func() {
		Consistently(f, time.Minute, func() bool { return !cond() }, "still the owner")
	})
	if returned {
		t.Error("Consistently returned after failing")
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0], "still the owner") || !strings.Contains(msgs[0], "stopped holding after ") {
		t.Fatalf("failures = %q, want one saying it stopped holding", msgs)
	}
}
