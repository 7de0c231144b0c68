package testkit

import (
	"fmt"
	"runtime"
	"sync"
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

// failures is a testing.TB whose Fatalf and Errorf are recorded instead
// of failing the real test, so that tests can assert that a method fails.
// Fatalf ends the calling goroutine as testing.T's does: run the call
// under it with run.
type failures struct {
	testing.TB // the real test, for Helper, Cleanup, Logf
	mu         sync.Mutex
	msgs       []string
}

func (f *failures) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *failures) Errorf(format string, args ...any) {
	f.mu.Lock()
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

// run calls fn on its own goroutine (so that Fatalf's Goexit ends only
// that) and returns the failures it reported.
func (f *failures) run(fn func()) []string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.msgs
	f.msgs = nil
	return out
}
