package testkit

import (
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it returns true, and
// fails the test with msg if that does not happen within timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: "+msg, append([]any{timeout}, args...)...)
		}
		timer := time.NewTimer(wait)
		<-timer.C // polling interval, not synchronisation: cond decides
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}
