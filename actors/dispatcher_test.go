package actors

import (
	"bytes"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/wait"
)

// goroutineID is the id runtime.Stack prints for the calling goroutine.
func goroutineID(t *testing.T) int {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, err := strconv.Atoi(string(b[:bytes.IndexByte(b, ' ')]))
	if err != nil {
		t.Errorf("goroutine id in %q: %v", buf, err)
	}
	return id
}

// schedule runs fn through d and waits for it.
func schedule(t *testing.T, d *warmDispatcher, fn func()) {
	t.Helper()
	done := make(chan struct{})
	d.Schedule(func() { fn(); close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a scheduled mailbox did not run")
	}
}

// waitParked waits until n of d's workers wait for a mailbox.
func waitParked(t *testing.T, d *warmDispatcher, n int32) {
	t.Helper()
	wait.For(t, 10*time.Second, func() bool { return d.parked.Load() == n }, "workers parked")
}

// waitWorkers waits until d has n workers, running or parked.
func waitWorkers(t *testing.T, d *warmDispatcher, n int32, msg string) {
	t.Helper()
	wait.For(t, 10*time.Second, func() bool { return d.workers.Load() == n }, "%s", msg)
}

func TestWarmDispatcherRunsTheNextMailboxOnTheSameGoroutine(t *testing.T) {
	d := newWarmDispatcher(4, time.Minute, 300)
	defer d.stop()
	var first, second int
	schedule(t, d, func() { first = goroutineID(t) })
	// The worker parks after its turn; the next mailbox goes to it rather
	// than to a new goroutine (protoactor's default would start one).
	for turn := range 3 {
		waitParked(t, d, 1)
		schedule(t, d, func() { second = goroutineID(t) })
		if second != first {
			t.Fatalf("turn %d ran on goroutine %d, the first on %d: the worker was not reused", turn, second, first)
		}
	}
	if n := d.workers.Load(); n != 1 {
		t.Fatalf("%d workers after four sequential turns, want 1", n)
	}
}

func TestWarmDispatcherNeverWaitsWhenEveryWorkerIsBusy(t *testing.T) {
	const max = 3
	d := newWarmDispatcher(max, time.Minute, 300)
	defer d.stop()
	release := make(chan struct{})
	started := make(chan struct{}, max)
	for range max {
		d.Schedule(func() { started <- struct{}{}; <-release })
	}
	for range max {
		<-started
	}
	// Every worker is blocked in a Receive: the next mailbox still runs,
	// on a goroutine of its own, and no worker beyond max is started.
	schedule(t, d, func() {})
	if n := d.workers.Load(); n != max {
		t.Fatalf("%d workers, want %d", n, max)
	}
	close(release)
}

func TestWarmDispatcherWorkersEndWhenIdleAndOnStop(t *testing.T) {
	d := newWarmDispatcher(4, 20*time.Millisecond, 300)
	schedule(t, d, func() {})
	waitWorkers(t, d, 0, "an idle worker did not end")

	d = newWarmDispatcher(4, time.Hour, 300)
	release := make(chan struct{})
	d.Schedule(func() {})
	d.Schedule(func() { <-release })
	wait.For(t, 10*time.Second, func() bool { return d.workers.Load() >= 1 }, "no worker started")
	d.stop()
	close(release)
	waitWorkers(t, d, 0, "workers still alive after stop")
	// A mailbox scheduled after stop still runs.
	schedule(t, d, func() {})
	waitWorkers(t, d, 0, "a worker started after stop stayed")
}
