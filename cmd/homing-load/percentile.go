package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value such that at least p% of the
// values are at or below it. It is 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// latencies summarises a set of durations.
type latencies struct {
	P50, P99, Max time.Duration
	Count         int
}

// summarize sorts ds in place and returns its p50, p99 and maximum.
func summarize(ds []time.Duration) latencies {
	slices.Sort(ds)
	l := latencies{Count: len(ds), P50: percentile(ds, 50), P99: percentile(ds, 99)}
	if len(ds) > 0 {
		l.Max = ds[len(ds)-1]
	}
	return l
}

// ms is d in milliseconds with microsecond resolution.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// secondsToMs converts seconds (as /api/v1/stats gives them) to
// milliseconds with microsecond resolution.
func secondsToMs(s float64) float64 { return math.Round(s*1e6) / 1e3 }

// rate is count per second over d; 0 when d is not positive.
func rate(count int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(count)/d.Seconds()*10) / 10
}
