package guard

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/clock"
)

func TestRate(t *testing.T) {
	type step struct {
		advance time.Duration
		key     string
		ok      bool
		retry   time.Duration
	}
	for _, c := range []struct {
		name  string
		n     int
		steps []step
	}{
		{"a burst of n, then one per interval/n", 3, []step{
			{key: "a", ok: true}, {key: "a", ok: true}, {key: "a", ok: true},
			{key: "a", retry: 20 * time.Second},
			{key: "b", ok: true}, // keys are independent
			{advance: 10 * time.Second, key: "a", retry: 10 * time.Second},
			{advance: 10 * time.Second, key: "a", ok: true},
			{key: "a", retry: 20 * time.Second},
			{advance: time.Hour, key: "a", ok: true}, {key: "a", ok: true}, {key: "a", ok: true}, // full again, not more
			{key: "a", retry: 20 * time.Second},
		}},
		{"n <= 0 allows everything", 0, []step{{key: "a", ok: true}, {key: "a", ok: true}, {key: "a", ok: true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := clock.New(time.Time{})
			r := NewRate(c.n, time.Minute, 100, clk.Now)
			for i, s := range c.steps {
				clk.Advance(s.advance)
				ok, retry := r.Allow(s.key)
				if ok != s.ok || (!ok && retry != s.retry) {
					t.Fatalf("step %d: Allow(%s) = %v, %v; want %v, %v", i, s.key, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

func TestRateMemoryIsBounded(t *testing.T) {
	clk := clock.New(time.Time{})
	r := NewRate(2, time.Minute, 50, clk.Now)
	for i := range 5000 {
		r.Allow(fmt.Sprint("k", i))
	}
	if n := r.Len(); n > 50 {
		t.Fatalf("%d keys tracked, want at most 50", n)
	}
	clk.Advance(time.Minute)
	if n := r.Len(); n != 0 {
		t.Fatalf("%d keys tracked once every bucket is full again", n)
	}
}

func TestRateConcurrent(t *testing.T) {
	r := NewRate(100, time.Hour, 10, nil)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if ok, _ := r.Allow("k"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 100 {
		t.Fatalf("%d allowed of 400, want the burst of 100", allowed)
	}
}

func TestCounter(t *testing.T) {
	c := NewCounter[string](2)
	steps := []struct {
		op   string
		key  string
		want bool
	}{
		{"acquire", "a", true}, {"acquire", "a", true}, {"acquire", "a", false}, {"acquire", "b", true},
		{"release", "a", true}, {"acquire", "a", true}, {"acquire", "a", false},
	}
	for i, s := range steps {
		if s.op == "release" {
			c.Release(s.key)
			continue
		}
		if got := c.Acquire(s.key); got != s.want {
			t.Fatalf("step %d: Acquire(%s) = %v", i, s.key, got)
		}
	}
	if c.Count("a") != 2 || c.Count("b") != 1 || c.Len() != 2 {
		t.Fatalf("counts a=%d b=%d keys=%d", c.Count("a"), c.Count("b"), c.Len())
	}
	c.Release("a")
	c.Release("a")
	c.Release("b")
	if c.Len() != 0 {
		t.Fatalf("%d keys tracked with nothing held", c.Len())
	}
}
