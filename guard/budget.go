package guard

import (
	"sync"
	"time"
)

// Budget counts failures per key over a sliding window. A check that may
// fail reserves its failure first (Reserve) and settles it afterwards:
// Refund when it succeeded, Fail when it failed. A key whose failures in
// the window plus the checks in progress reach the limit is refused, so
// the limit bounds the checks as well as the failures: with a limit of 10,
// 50 attempts in parallel get 10 checks and 40 refusals.
//
// At most a limit's worth of failure times is kept per key, keys whose
// failures all left the window are dropped, and at most maxKeys keys are
// tracked (the least recently used is forgotten first). Safe for
// concurrent use.
type Budget struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	t       *table[*bucket]
	evicted int
}

type bucket struct {
	fails    []time.Time // oldest first; at most limit
	reserved int         // checks in progress
}

// NewBudget returns a budget of limit failures per key within window,
// tracking at most maxKeys keys (at least 1), with the clock now (nil:
// time.Now).
func NewBudget(limit int, window time.Duration, maxKeys int, now func() time.Time) *Budget {
	if now == nil {
		now = time.Now
	}
	return &Budget{limit: max(limit, 1), window: window, now: now, t: newTable[*bucket](max(maxKeys, 1))}
}

// Reservation is one reserved failure, to be settled once with Refund or
// Fail. Settling it again does nothing.
type Reservation struct {
	b    *Budget
	key  string
	done bool // guarded by b.mu
}

// Reserve reserves a failure of key's budget for a check about to run. It
// returns a *Refusal (ErrThrottled, with the time until a failure leaves
// the window) when the budget is used up.
func (b *Budget) Reserve(key string) (*Reservation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	bk, ok := b.t.get(key)
	if ok {
		bk.expire(now, b.window)
	} else {
		bk = &bucket{}
	}
	if len(bk.fails)+bk.reserved >= b.limit {
		// The budget has room again when the k-th oldest failure leaves
		// the window (if the checks in progress succeed); when checks in
		// progress alone fill it, one of them ends soon.
		retry := time.Second
		if k := len(bk.fails) + bk.reserved - b.limit; k < len(bk.fails) {
			retry = max(bk.fails[k].Add(b.window).Sub(now), time.Second)
		}
		return nil, &Refusal{Err: ErrThrottled, RetryAfter: retry}
	}
	bk.reserved++
	if !ok {
		b.evicted += b.t.put(key, bk, b.expiredAt(now), pinned)
	}
	return &Reservation{b: b, key: key}, nil
}

// Refund gives the reserved failure back: the check succeeded, or could
// not be made.
func (r *Reservation) Refund() {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	if bk, ok := b.t.peek(r.key); ok && bk.reserved > 0 {
		bk.reserved--
	}
}

// Fail turns the reservation into a failure at the current time and
// returns the key's failures within the window, this one included.
func (r *Reservation) Fail() int {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.done {
		return b.failuresLocked(r.key, b.now())
	}
	r.done = true
	now := b.now()
	bk, ok := b.t.get(r.key)
	if ok && bk.reserved > 0 {
		bk.reserved--
	}
	return b.addLocked(r.key, bk, ok, now)
}

// Record counts a failure that needed no reservation (it cost nothing to
// check) and returns the key's failures within the window.
func (b *Budget) Record(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, ok := b.t.get(key)
	return b.addLocked(key, bk, ok, b.now())
}

func (b *Budget) addLocked(key string, bk *bucket, ok bool, now time.Time) int {
	if !ok {
		bk = &bucket{}
		b.evicted += b.t.put(key, bk, b.expiredAt(now), pinned)
	}
	bk.expire(now, b.window)
	bk.fails = append(bk.fails, now)
	if n := len(bk.fails); n > b.limit {
		bk.fails = append(bk.fails[:0], bk.fails[n-b.limit:]...)
	}
	return len(bk.fails)
}

// Failures returns key's failures within the window.
func (b *Budget) Failures(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failuresLocked(key, b.now())
}

func (b *Budget) failuresLocked(key string, now time.Time) int {
	bk, ok := b.t.peek(key)
	if !ok {
		return 0
	}
	bk.expire(now, b.window)
	return len(bk.fails)
}

// Len returns the number of keys tracked, after dropping those whose
// failures all left the window.
func (b *Budget) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.t.sweep(b.expiredAt(b.now()))
	return b.t.len()
}

// Evicted returns how many keys with failures still in the window were
// forgotten to keep within maxKeys.
func (b *Budget) Evicted() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.evicted
}

// expire drops the failures that left the window.
func (bk *bucket) expire(now time.Time, window time.Duration) {
	i := 0
	for i < len(bk.fails) && now.Sub(bk.fails[i]) >= window {
		i++
	}
	if i > 0 {
		bk.fails = append(bk.fails[:0], bk.fails[i:]...)
	}
}

func (b *Budget) expiredAt(now time.Time) func(*bucket) bool {
	return func(bk *bucket) bool {
		return bk.reserved == 0 && (len(bk.fails) == 0 || now.Sub(bk.fails[len(bk.fails)-1]) >= b.window)
	}
}

func pinned(bk *bucket) bool { return bk.reserved > 0 }
