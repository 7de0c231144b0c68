package cluster

import "sync"

// Changes tells its subscribers that something about the cluster changed
// as this node sees it: membership (a member joined, left, died, changed
// its metadata) or ownership (a partition opened or closed here). It says
// only "look again": a subscriber that has not looked yet is told once for
// several changes. Notify never blocks. Safe for concurrent use; the zero
// value is ready.
type Changes struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// Subscribe returns a channel that receives a value after each change
// (coalesced), and the function that ends the subscription.
func (c *Changes) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.subs == nil {
		c.subs = map[chan struct{}]struct{}{}
	}
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.subs, ch)
		c.mu.Unlock()
	}
}

// Notify tells every subscriber that something changed.
func (c *Changes) Notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default: // it has a notice it has not read yet
		}
	}
}
