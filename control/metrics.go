package control

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
)

// loginResults are the results of a login to POST /api/v1/submit, as
// homing_api_submit_logins_total counts them (the same words as SMTP's
// homing_smtp_auth_attempts_total).
var loginResults = []string{"ok", "failed", "throttled", "busy", "unavailable"}

func newSubmitLogins() *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "homing_api_submit_logins_total",
		Help: "Logins of POST /api/v1/submit by result: ok, failed (wrong credentials), throttled (a failure budget used up, refused unchecked), busy (no password check slot in time), unavailable (the check could not be made).",
	}, []string{"result"})
	for _, r := range loginResults {
		v.WithLabelValues(r)
	}
	return v
}

// loginResult counts one login of the submit API.
func (a *API) loginResult(result string) { a.submitLogins.WithLabelValues(result).Inc() }

// RegisterMetrics adds to reg the gauges that are read from the node's
// state at scrape time (queue age, members by state, partitions without
// an owner, partition moves, the guard's password checks and the
// networks and accounts it tracks) and the submit API's logins. Every
// series exists from the start, at zero.
func (a *API) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(a.submitLogins)
	a.registerSpaceMetrics(reg)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "homing_partitions_unowned",
		Help: "Partitions without an owner as this node sees the cluster (no live backend for them): their accounts cannot be reached.",
	}, func() float64 {
		if cl := a.cluster(); cl != nil {
			n := 0
			for _, o := range cl.Placement.Owners() {
				if o == "" {
					n++
				}
			}
			return float64(n)
		}
		if mail.HasRole(a.Info.Roles, mail.RoleBackend) {
			return 0
		}
		return float64(a.Info.Partitions)
	}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "homing_auth_checks_in_progress", Help: "Password checks running now (SMTP AUTH and the submit API share the gate).",
	}, func() float64 { return float64(a.Guard.Gate().InUse()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "homing_auth_check_slots", Help: "Password checks that may run at once (--auth-max-checks).",
	}, func() float64 { return float64(a.Guard.Gate().Size()) }))
	for _, kind := range []string{"networks", "accounts"} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "homing_auth_failures_tracked", Help: "Client networks, and accounts from a network, with failed logins in the window (--auth-failure-window).",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 {
			nets, accts := a.Guard.Tracked()
			if kind == "networks" {
				return float64(nets)
			}
			return float64(accts)
		}))
	}
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
