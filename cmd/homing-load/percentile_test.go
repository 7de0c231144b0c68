package main

import (
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value p50", []time.Duration{7}, 50, 7},
		{"one value p99", []time.Duration{7}, 99, 7},
		{"1..100 p50", hundred, 50, 50 * time.Millisecond},
		{"1..100 p99", hundred, 99, 99 * time.Millisecond},
		{"1..100 p100", hundred, 100, 100 * time.Millisecond},
		{"1..100 p1", hundred, 1, time.Millisecond},
		{"four p50", []time.Duration{10, 20, 30, 40}, 50, 20},
		{"four p51", []time.Duration{10, 20, 30, 40}, 51, 30},
		{"four p99", []time.Duration{10, 20, 30, 40}, 99, 40},
		{"1000 p99 is the 990th", seqDur(1000), 99, 990},
	}
	for _, c := range cases {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: percentile = %v, want %v", c.name, got, c.want)
		}
	}
}

func seqDur(n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = time.Duration(i + 1)
	}
	return s
}

func TestSummarizeSorts(t *testing.T) {
	l := summarize([]time.Duration{5, 1, 4, 2, 3})
	if l.P50 != 3 || l.P99 != 5 || l.Max != 5 || l.Count != 5 {
		t.Errorf("summarize = %+v", l)
	}
	if l := summarize(nil); l != (latencies{}) {
		t.Errorf("summarize(nil) = %+v", l)
	}
}

func TestRateAndMillis(t *testing.T) {
	if got := rate(1000, 2*time.Second); got != 500 {
		t.Errorf("rate = %v", got)
	}
	if got := rate(5, 0); got != 0 {
		t.Errorf("rate over 0 = %v", got)
	}
	if got := ms(1500 * time.Microsecond); got != 1.5 {
		t.Errorf("ms = %v", got)
	}
	if got := secondsToMs(0.030472201000000002); got != 30.472 {
		t.Errorf("secondsToMs = %v", got)
	}
}
