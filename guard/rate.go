package guard

import (
	"sync"
	"time"
)

// Rate is a token bucket per key: each key may do n things at once and
// then n per interval (one every interval/n). A key whose bucket is full
// again is forgotten, and at most maxKeys keys are tracked (the least
// recently used is forgotten first, which can only let it do more). Safe
// for concurrent use. A Rate with n <= 0 allows everything.
type Rate struct {
	n        int
	interval time.Duration
	now      func() time.Time

	mu sync.Mutex
	t  *table[*tokens]
}

type tokens struct {
	left float64
	at   time.Time // when left was computed
}

// NewRate returns a rate of n per interval per key, tracking at most
// maxKeys keys, with the clock now (nil: time.Now).
func NewRate(n int, interval time.Duration, maxKeys int, now func() time.Time) *Rate {
	if now == nil {
		now = time.Now
	}
	if interval <= 0 {
		interval = time.Minute
	}
	return &Rate{n: n, interval: interval, now: now, t: newTable[*tokens](max(maxKeys, 1))}
}

// Allow takes one token of key's bucket. When there is none it reports
// false and how long until there is one.
func (r *Rate) Allow(key string) (ok bool, retryAfter time.Duration) {
	if r.n <= 0 {
		return true, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	tk, found := r.t.get(key)
	if !found {
		tk = &tokens{left: float64(r.n), at: now}
		r.t.put(key, tk, r.fullAt(now), func(*tokens) bool { return false })
	}
	tk.refill(now, r.n, r.interval)
	if tk.left < 1 {
		per := r.interval / time.Duration(r.n)
		return false, time.Duration((1 - tk.left) * float64(per))
	}
	tk.left--
	return true, 0
}

// Len returns the keys tracked whose buckets are not full.
func (r *Rate) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.sweep(r.fullAt(r.now()))
	return r.t.len()
}

func (tk *tokens) refill(now time.Time, n int, interval time.Duration) {
	if el := now.Sub(tk.at); el > 0 {
		tk.left = min(float64(n), tk.left+float64(n)*float64(el)/float64(interval))
		tk.at = now
	}
}

// fullAt reports whether a bucket is full at now (it then says nothing a
// fresh bucket would not).
func (r *Rate) fullAt(now time.Time) func(*tokens) bool {
	return func(tk *tokens) bool {
		return tk.left+float64(r.n)*float64(now.Sub(tk.at))/float64(r.interval) >= float64(r.n)
	}
}
