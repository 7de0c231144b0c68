package guard

import "sync"

// Counter counts what each key holds open (connections per network) and
// refuses a key at its limit. A key is tracked only while it holds
// something, so the memory is bounded by what is open. Safe for concurrent
// use.
type Counter[K comparable] struct {
	limit int

	mu sync.Mutex
	m  map[K]int
}

// NewCounter returns a counter with limit per key (at least 1).
func NewCounter[K comparable](limit int) *Counter[K] {
	return &Counter[K]{limit: max(limit, 1), m: make(map[K]int)}
}

// Acquire counts one more for k, or reports false when k is at its limit.
func (c *Counter[K]) Acquire(k K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[k] >= c.limit {
		return false
	}
	c.m[k]++
	return true
}

// Release counts one less for k; a key at zero is forgotten.
func (c *Counter[K]) Release(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[k]--; c.m[k] <= 0 {
		delete(c.m, k)
	}
}

// Count returns what k holds.
func (c *Counter[K]) Count(k K) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// Len returns the number of keys that hold something.
func (c *Counter[K]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Limit returns the limit per key.
func (c *Counter[K]) Limit() int { return c.limit }
