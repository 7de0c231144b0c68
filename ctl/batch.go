package ctl

import (
	"context"
	"sync"
)

// batchWorkers is how many requests a batch (`queue retry --all`,
// `accounts import`) has in flight at once.
const batchWorkers = 4

// outcome is what became of one item of a batch.
type outcome int

const (
	outcomeOK      outcome = iota // done
	outcomeSkipped                // nothing to do: the account exists, the message is gone
	outcomeFailed                 // an error, reported at the end
)

// batch runs do for the items 0..n-1 with batchWorkers requests in
// flight, each with its own --timeout, and shows the progress on stderr. It
// returns when every item is done, with each item's outcome and error
// (index by item). No goroutine outlives it.
func (c *command) batch(n int, do func(ctx context.Context, i int) (outcome, error)) ([]outcome, []error) {
	outcomes := make([]outcome, n)
	errs := make([]error, n)
	p := newProgress(c.stderr, c.tty, n, c.now)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(batchWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
				outcomes[i], errs[i] = do(ctx, i)
				cancel()
				p.Done(outcomes[i] == outcomeFailed)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	p.Finish()
	return outcomes, errs
}

// batchItem is one item of a batch's JSON summary: what it was, and
// the error it met.
type batchItem struct {
	ID      string `json:"id,omitempty"`
	Node    string `json:"node,omitempty"`
	Line    int    `json:"line,omitempty"`
	Address string `json:"address,omitempty"`
	Error   string `json:"error,omitempty"`
}
