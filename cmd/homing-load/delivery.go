package main

import (
	"context"
	"time"

	"github.com/homing-mail/homing/admin"
)

// pollInterval is how often the delivered count is read.
const pollInterval = 20 * time.Millisecond

// statsReader is the part of the admin API the delivery wait needs.
type statsReader interface {
	Stats(ctx context.Context) (admin.Stats, error)
}

// delivery is what waitDelivered saw.
type delivery struct {
	// Delivered is deliveredLocal minus the baseline at the last poll.
	Delivered int64
	// Reached is when a poll first saw Delivered >= the target; zero
	// when the deadline came first.
	Reached time.Time
	// Last is the last Stats read (for the store latencies).
	Last admin.Stats
	// Err is the last error of a poll, if the wait ended without the
	// target.
	Err error
}

// Complete reports whether the target was reached.
func (d delivery) Complete() bool { return !d.Reached.IsZero() }

// waitDelivered polls Stats every interval until deliveredLocal - base
// reaches want or timeout passes. Poll errors are retried until then.
func waitDelivered(ctx context.Context, api statsReader, base, want int64, interval, timeout time.Duration) delivery {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	var d delivery
	for {
		s, err := api.Stats(ctx)
		now := time.Now()
		if err == nil {
			d.Last, d.Err = s, nil
			d.Delivered = s.DeliveredLocal - base
			if d.Delivered >= want {
				d.Reached = now
				return d
			}
		} else if ctx.Err() == nil {
			d.Err = err
		}
		select {
		case <-ctx.Done():
			if d.Err == nil {
				d.Err = ctx.Err()
			}
			return d
		case <-t.C:
		}
	}
}
