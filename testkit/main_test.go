package testkit

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no goroutine outlives the tests: every fake MX and
// node a test starts is stopped by its cleanups.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// protoactor's dead-letter log throttle keeps a goroutine for one
		// DeadLetterThrottleInterval (1 s) after the first dead letter of a
		// period; it ends by itself and nothing can stop it earlier. Its
		// name depends on inlining. (As in package actors.)
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"),
	)
}
