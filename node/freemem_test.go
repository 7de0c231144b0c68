package node

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/wait"
)

// Closes in a burst return memory once, after the delay; a close within
// the interval of the last return waits for the interval; stop cancels.
func TestMemoryReturnIsDebounced(t *testing.T) {
	var runs atomic.Int32
	m := &memoryReturn{delay: 20 * time.Millisecond, every: 300 * time.Millisecond, free: func() { runs.Add(1) }}
	start := time.Now()
	for range 10 {
		m.closed()
	}
	wait.For(t, 5*time.Second, func() bool { return runs.Load() == 1 }, "one return for a burst of closes")
	m.closed()
	wait.For(t, 5*time.Second, func() bool { return runs.Load() == 2 }, "a second return")
	if took := time.Since(start); took < m.every {
		t.Errorf("the second return came %v after the first burst, want at least the interval %v", took, m.every)
	}
	if got := runs.Load(); got != 2 {
		t.Fatalf("%d returns, want 2", got)
	}
	m.closed()
	m.stop()
	m.mu.Lock()
	pending := m.timer != nil
	m.mu.Unlock()
	if pending {
		t.Fatal("a return is still scheduled after stop")
	}
	m.closed()
	m.mu.Lock()
	pending = m.timer != nil
	m.mu.Unlock()
	if pending || runs.Load() != 2 {
		t.Fatalf("after stop: scheduled %v, %d returns; want nothing more", pending, runs.Load())
	}
}
