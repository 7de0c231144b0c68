package guard

import (
	"context"
	"sync"
	"time"
)

// Gate bounds the password checks in progress. Enter waits up to the
// gate's wait for a slot and then refuses, so an attempt beyond the
// capacity is answered quickly instead of waiting in an unbounded queue.
// Safe for concurrent use.
type Gate struct {
	sem  chan struct{}
	wait time.Duration
}

// NewGate returns a gate of n slots (at least 1) whose Enter waits at most
// wait for one.
func NewGate(n int, wait time.Duration) *Gate {
	return &Gate{sem: make(chan struct{}, max(n, 1)), wait: wait}
}

// Enter takes a slot. It returns the function that gives it back (call it
// once, as soon as the check is done), or a *Refusal (ErrBusy) when no slot
// came free within the wait, or ctx's error.
func (g *Gate) Enter(ctx context.Context) (release func(), err error) {
	select {
	case g.sem <- struct{}{}:
		return g.releaser(), nil
	default:
	}
	if g.wait <= 0 {
		return nil, &Refusal{Err: ErrBusy, RetryAfter: time.Second}
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.sem <- struct{}{}:
		return g.releaser(), nil
	case <-t.C:
		return nil, &Refusal{Err: ErrBusy, RetryAfter: time.Second}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *Gate) releaser() func() { return sync.OnceFunc(func() { <-g.sem }) }

// InUse returns the slots taken now.
func (g *Gate) InUse() int { return len(g.sem) }

// Size returns the number of slots.
func (g *Gate) Size() int { return cap(g.sem) }
