// Package failtb is a testing.TB for testing test helpers: its Fatalf and
// Errorf are recorded instead of failing the real test, so a test can
// assert that an assertion fails, and with what message. It imports nothing
// of Homing (the tests of the leaf test packages use it).
package failtb

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// Recorder wraps the real test (for Helper, Cleanup, Logf, TempDir...)
// and records the failures reported through it. Fatal and Fatalf end the
// calling goroutine, as testing.T's do: call the helper under Run.
type Recorder struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

// New returns a Recorder for t.
func New(t testing.TB) *Recorder { return &Recorder{TB: t} }

func (r *Recorder) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }
func (r *Recorder) Error(args ...any)                 { r.record(fmt.Sprint(args...)) }

func (r *Recorder) Fatalf(format string, args ...any) {
	r.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (r *Recorder) Fatal(args ...any) {
	r.record(fmt.Sprint(args...))
	runtime.Goexit()
}

func (r *Recorder) record(msg string) {
	r.mu.Lock()
	r.msgs = append(r.msgs, msg)
	r.mu.Unlock()
}

// Run calls fn on a goroutine of its own (so that a Fatal ends only that)
// and returns the failures reported meanwhile and whether fn returned.
func (r *Recorder) Run(fn func()) (msgs []string, returned bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
		returned = true
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	msgs, r.msgs = r.msgs, nil
	return msgs, returned
}
