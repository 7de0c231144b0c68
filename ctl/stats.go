package ctl

import (
	"fmt"
	"io"
	"sort"
)

func (c *command) cmdActors(args []string) error {
	_, done, err := c.prepare(c.flags("actors"), args, 0, 0, "actors takes no arguments")
	if err != nil {
		return err
	}
	defer done()
	a, err := c.client.Actors(c.ctx)
	if err != nil {
		return c.describe(thing{name: "actors"}, err)
	}
	return c.out(a, func(w io.Writer) {
		kinds := make([]string, 0, len(a))
		total := 0
		for k, n := range a {
			kinds = append(kinds, k)
			total += n
		}
		sort.Strings(kinds)
		fmt.Fprintln(w, "KIND\tCOUNT")
		for _, k := range kinds {
			fmt.Fprintf(w, "%s\t%d\n", cell(k), a[k])
		}
		fmt.Fprintf(w, "total\t%d\n", total)
	})
}

func (c *command) cmdStats(args []string) error {
	_, done, err := c.prepare(c.flags("stats"), args, 0, 0, "stats takes no arguments")
	if err != nil {
		return err
	}
	defer done()
	s, err := c.client.Stats(c.ctx)
	if err != nil {
		return c.describe(thing{name: "stats"}, err)
	}
	return c.out(s, func(w io.Writer) {
		fmt.Fprintf(w, "accepted:\t%d\n", s.Accepted)
		fmt.Fprintf(w, "delivered local:\t%d\n", s.DeliveredLocal)
		fmt.Fprintf(w, "relayed:\t%d\n", s.Relayed)
		fmt.Fprintf(w, "bounced:\t%d\n", s.Bounced)
		fmt.Fprintf(w, "deferred:\t%d\n", s.Deferred)
		fmt.Fprintf(w, "queue depth:\t%d\n", s.QueueDepth)
		fmt.Fprintf(w, "store latency p50:\t%s\n", formatMillis(s.StoreLatencyP50))
		fmt.Fprintf(w, "store latency p99:\t%s\n", formatMillis(s.StoreLatencyP99))
		fmt.Fprintf(w, "since:\t%s\n", formatTime(s.Since))
	})
}

const actorsHelp = `usage: homing ctl actors

How many actors of each kind (account, partition, queue, relay...) run on
the node asked, and their total.

example:
  homing ctl actors --json
`

const statsHelp = `usage: homing ctl stats

The node's counters since it started (messages accepted, recipients
delivered locally, relayed, bounced, deferred, the queue's depth) and the
delivery latency, received to stored, over the recent deliveries (p50,
p99). /metrics has the same and more for Prometheus.

example:
  homing ctl stats
`
