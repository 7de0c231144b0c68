package main

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
)

// countingStats returns deliveredLocal = base + 10 per call, and fails
// the calls listed in fail.
type countingStats struct {
	mu    sync.Mutex
	calls int
	base  int64
	fail  map[int]bool
}

func (c *countingStats) Stats(ctx context.Context) (admin.Stats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail[c.calls] {
		return admin.Stats{}, errors.New("connection refused")
	}
	return admin.Stats{DeliveredLocal: c.base + int64(10*c.calls), StoreLatencyP50: 0.003}, nil
}

func TestWaitDeliveredReachesTarget(t *testing.T) {
	s := &countingStats{base: 1000, fail: map[int]bool{2: true}}
	start := time.Now()
	d := waitDelivered(context.Background(), s, 1000, 45, time.Millisecond, time.Minute)
	if !d.Complete() || d.Delivered != 50 || d.Reached.Before(start) || d.Last.StoreLatencyP50 != 0.003 || d.Err != nil {
		t.Fatalf("delivery %+v", d)
	}
	if s.calls != 5 {
		t.Errorf("%d polls, want 5 (one failed and was retried)", s.calls)
	}
}

func TestWaitDeliveredTimesOut(t *testing.T) {
	s := &countingStats{}
	d := waitDelivered(context.Background(), s, 0, 1<<40, time.Millisecond, 30*time.Millisecond)
	if d.Complete() || d.Delivered <= 0 || !errors.Is(d.Err, context.DeadlineExceeded) {
		t.Fatalf("delivery %+v", d)
	}
}
