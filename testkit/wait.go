package testkit

import (
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/wait"
)

// Eventually is wait.For: it polls cond until it returns true, and fails
// the test with msg if that does not happen within timeout. New tests
// call wait.For; this name stays for the tests that use it.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	wait.For(t, timeout, cond, msg, args...)
}
