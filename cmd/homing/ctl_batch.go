package main

import (
	"context"
	"sync"
)

// ctlBatchWorkers is how many requests a batch (`queue retry --all`,
// `accounts import`) has in flight at once.
const ctlBatchWorkers = 4

// ctlOutcome is what became of one item of a batch.
type ctlOutcome int

const (
	ctlOK      ctlOutcome = iota // done
	ctlSkipped                   // nothing to do: the account exists, the message is gone
	ctlFailed                    // an error, reported at the end
)

// batch runs do for the items 0..n-1 with ctlBatchWorkers requests in
// flight, each with its own --timeout, and shows the progress on stderr. It
// returns when every item is done, with each item's outcome and error
// (index by item). No goroutine outlives it.
func (c *ctlRun) batch(n int, do func(ctx context.Context, i int) (ctlOutcome, error)) ([]ctlOutcome, []error) {
	outcomes := make([]ctlOutcome, n)
	errs := make([]error, n)
	p := newCtlProgress(c.stderr, c.tty, n, c.now)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(ctlBatchWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
				outcomes[i], errs[i] = do(ctx, i)
				cancel()
				p.Done(outcomes[i] == ctlFailed)
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
