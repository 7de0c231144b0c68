package control

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homing-mail/homing/cluster"
)

// RegisterMetrics adds to reg the gauges that are read from the node's
// state at scrape time: queue age, members by state, partition moves.
func (a *API) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "homing_queue_oldest_seconds", Help: "Age of the oldest message in this node's queue (0 when empty).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		t, err := a.System.OldestQueued(ctx)
		if err != nil || t.IsZero() {
			return 0
		}
		return time.Since(t).Seconds()
	}))
	for _, st := range []cluster.State{cluster.StateAlive, cluster.StateSuspect, cluster.StateDead, cluster.StateLeft} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "homing_cluster_members", Help: "Members of the cluster by state, as this node sees them.",
			ConstLabels: prometheus.Labels{"state": string(st)},
		}, func() float64 {
			return float64(len(a.members(func(m cluster.Member) bool { return m.State == st })))
		}))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "homing_partition_moves_total", Help: "Partitions started or stopped on this node because membership changed.",
	}, func() float64 {
		if cl := a.cluster(); cl != nil && cl.Ownership != nil {
			return float64(cl.Ownership.Moves())
		}
		return 0
	}))
}
