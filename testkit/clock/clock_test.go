package clock

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

func TestNowShowsTheStartUntilAdvanced(t *testing.T) {
	c := New(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now() = %v, want the start %v", got, t0)
	}
	if got := c.Advance(90 * time.Second); !got.Equal(t0.Add(90 * time.Second)) {
		t.Fatalf("Advance returned %v, want 90s later", got)
	}
	var now func() time.Time = c.Now // what code under test takes
	if got := now(); !got.Equal(t0.Add(90 * time.Second)) {
		t.Fatalf("Now() after Advance = %v, want 90s after the start", got)
	}
	c.Set(t0.Add(-time.Hour))
	if got := c.Now(); !got.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("Now() after Set = %v, want an hour before the start", got)
	}
}

func TestNewWithoutAStartShowsStart(t *testing.T) {
	if got := New(time.Time{}).Now(); !got.Equal(Start) {
		t.Fatalf("Now() = %v, want Start %v", got, Start)
	}
}

func TestAdvanceBackwardsPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Advance(-1s) did not panic")
		}
	}()
	New(t0).Advance(-time.Second)
}

// TestConcurrentUse is for -race: Advance and Now from several goroutines.
func TestConcurrentUse(t *testing.T) {
	c := New(t0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Advance(time.Millisecond)
			}
		}()
		go func() {
			defer wg.Done()
			last := t0
			for range 100 {
				now := c.Now()
				if now.Before(last) {
					t.Errorf("Now() went back from %v to %v", last, now)
				}
				last = now
			}
		}()
	}
	wg.Wait()
	if got := c.Now(); !got.Equal(t0.Add(400 * time.Millisecond)) {
		t.Fatalf("Now() = %v after 400 advances of 1ms, want %v", got, t0.Add(400*time.Millisecond))
	}
}
