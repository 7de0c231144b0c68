package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

// The targets of a comparison (--targets).
const (
	targetHoming  = "homing"  // a spawned single node (homing serve)
	targetCluster = "cluster" // a spawned homing dev: 1 frontend, 2 backends
	targetPostfix = "postfix" // a private Postfix, virtual Maildirs
	targetSink    = "sink"    // smtp-sink: the protocol alone
)

var knownTargets = []string{targetHoming, targetCluster, targetPostfix, targetSink}

// roundResult is one target's measurement in one round: the same load
// client, parameters and accounts for every target.
type roundResult struct {
	Target string `json:"target"`
	Round  int    `json:"round"` // 1-based; 0 for the half-load run

	Accepted  int64 `json:"accepted"`
	Failures  int64 `json:"failures"` // 4xx, 5xx, connection failures, unsent
	Delivered int64 `json:"delivered"`
	// Complete: every accepted message was delivered before the
	// deadline (a node's mailboxes, Postfix's Maildirs; the sink
	// delivers what it accepts).
	Complete bool `json:"complete"`

	AcceptedPerSec  float64 `json:"acceptedPerSec"`
	DeliveredPerSec float64 `json:"deliveredPerSec"` // first MAIL -> last delivery
	DeliveredMBps   float64 `json:"deliveredMBps"`   // bytes delivered / that window, 10^6 B
	Data250P50Ms    float64 `json:"data250P50Ms"`
	Data250P99Ms    float64 `json:"data250P99Ms"`
	// StoreP50Ms and StoreP99Ms are a node's received -> stored
	// latencies (GET /api/v1/stats); Postfix and the sink have none.
	StoreP50Ms float64 `json:"storeP50Ms,omitempty"`
	StoreP99Ms float64 `json:"storeP99Ms,omitempty"`
	// BusyPercent is how busy the machine's CPUs were from the first
	// MAIL to the last delivery (/proc/stat; 0 where it cannot tell): a
	// target near 100 is bound by the CPU, one well below by its waits.
	BusyPercent float64 `json:"busyPercent,omitempty"`
	// RatePaced is the pace of the load in msg/s (the half-load run);
	// 0 = as fast as the sessions go.
	RatePaced float64 `json:"ratePaced,omitempty"`
	Error     string  `json:"error,omitempty"`
}

// ok reports whether the result is a measurement.
func (r roundResult) ok() bool { return r.Error == "" && r.Complete && r.Accepted > 0 }

// compareTarget measures one target once.
func compareTarget(ctx context.Context, cfg config, target string, progress io.Writer) roundResult {
	switch target {
	case targetHoming, targetCluster:
		c := cfg
		c.Cluster = target == targetCluster
		c.SMTPSource = false
		rep, err := run(ctx, c, progress)
		return fromReport(target, cfg.Size, rep, err)
	case targetPostfix:
		return measurePostfix(ctx, cfg, progress)
	case targetSink:
		return measureSink(ctx, cfg, progress)
	}
	return roundResult{Target: target, Error: "unknown target"}
}

// fromReport is a node run's report as a round result.
func fromReport(target string, size int, rep *report, err error) roundResult {
	r := roundResult{Target: target}
	if err != nil {
		r.Error = err.Error()
	}
	if rep == nil {
		return r
	}
	r.Accepted, r.Delivered, r.Complete = rep.Accepted, rep.Delivered, rep.DeliveryComplete
	r.Failures = rep.TempFailures + rep.PermFailures + rep.IOErrors + rep.Unsent
	r.AcceptedPerSec, r.DeliveredPerSec = rep.AcceptedPerSec, rep.DeliveredPerSec
	r.DeliveredMBps = megabytes(r.DeliveredPerSec, size)
	r.Data250P50Ms, r.Data250P99Ms = rep.Data250P50Ms, rep.Data250P99Ms
	r.StoreP50Ms, r.StoreP99Ms = rep.StoreP50Ms, rep.StoreP99Ms
	if rep.MachineCPU != nil {
		r.BusyPercent = rep.MachineCPU.BusyPercent
	}
	if r.Error == "" && !rep.DeliveryComplete {
		r.Error = "not every accepted message was delivered: " + rep.DeliveryError
	}
	return r
}

// megabytes is perSec messages of size bytes in 10^6 bytes per second.
func megabytes(perSec float64, size int) float64 {
	return roundTo(perSec*float64(size)/1e6, 2)
}

// accountList is the run's recipients, as every target gets them.
func accountList(cfg config) (*generator, []string, error) {
	gen, err := newGenerator(cfg.Size, cfg.From, cfg.Domain, cfg.Accounts)
	if err != nil {
		return nil, nil, err
	}
	rcpts := make([]string, cfg.Accounts)
	for i := range rcpts {
		rcpts[i] = gen.account(i)
	}
	return gen, rcpts, nil
}

// sendTo runs the load client against addr and fills in the accepted
// side of r.
func sendTo(ctx context.Context, cfg config, addr string, gen *generator, rcpts []string, r *roundResult) sendResult {
	s := &sender{addr: addr, helo: "homing-load.localhost", from: cfg.From, gen: gen, rcpts: rcpts, n: cfg.N, sessions: cfg.sessions(), rate: cfg.Rate}
	res := s.run(ctx)
	r.Accepted = res.Accepted
	r.Failures = res.Temp + res.Perm + res.IO + res.Unsent
	r.AcceptedPerSec = rate(res.Accepted, res.Window())
	lat := summarize(res.Latencies)
	r.Data250P50Ms, r.Data250P99Ms = ms(lat.P50), ms(lat.P99)
	if r.Failures > 0 && len(res.Samples) > 0 {
		r.Error = fmt.Sprintf("%d messages not accepted, e.g. %s", r.Failures, oneLine(res.Samples[0]))
	}
	return res
}

// measurePostfix starts a private Postfix, sends the load, waits until
// the Maildirs hold every accepted message, and stops it.
func measurePostfix(ctx context.Context, cfg config, progress io.Writer) roundResult {
	r := roundResult{Target: targetPostfix}
	gen, rcpts, err := accountList(cfg)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	pf, err := startPostfix(ctx, postfixOptions{Postfix: cfg.Postfix, Domain: cfg.Domain, Accounts: rcpts, Sessions: cfg.sessions()})
	if err != nil {
		r.Error = "starting the private Postfix: " + err.Error()
		return r
	}
	fmt.Fprintf(progress, "homing-load: private Postfix on %s, dir %s\n", pf.SMTP, pf.Dir)
	defer func() {
		if err := pf.Stop(cfg.StopTimeout); err != nil && r.Error == "" {
			r.Error = "stopping the private Postfix: " + err.Error()
		}
	}()
	cpu := startCPUWindow()
	res := sendTo(ctx, cfg, pf.SMTP, gen, rcpts, &r)
	w := pf.waitDelivered(ctx, res.Accepted, cfg.Timeout)
	r.BusyPercent = cpu.busy()
	r.Delivered = w.Delivered
	r.Complete = !w.Reached.IsZero()
	if r.Complete && !res.First.IsZero() {
		r.DeliveredPerSec = rate(w.Delivered, w.Reached.Sub(res.First))
		r.DeliveredMBps = megabytes(r.DeliveredPerSec, cfg.Size)
	}
	if w.Err != nil && r.Error == "" {
		r.Error = fmt.Sprintf("%v; Postfix's log:\n%s", w.Err, pf.logTail(10))
	}
	return r
}

// measureSink starts smtp-sink, sends the load, and stops it: what it
// accepted counts as delivered.
func measureSink(ctx context.Context, cfg config, progress io.Writer) roundResult {
	r := roundResult{Target: targetSink}
	gen, rcpts, err := accountList(cfg)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	sink, err := startSink(ctx, cfg.sessions(), cfg.StartTimeout)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	fmt.Fprintf(progress, "homing-load: smtp-sink on %s\n", sink.Addr)
	defer func() {
		if err := sink.Stop(); err != nil && r.Error == "" {
			r.Error = err.Error()
		}
	}()
	cpu := startCPUWindow()
	res := sendTo(ctx, cfg, sink.Addr, gen, rcpts, &r)
	r.BusyPercent = cpu.busy()
	r.Delivered, r.Complete = res.Accepted, res.Accepted > 0
	r.DeliveredPerSec = r.AcceptedPerSec
	r.DeliveredMBps = megabytes(r.DeliveredPerSec, cfg.Size)
	return r
}

// compare runs the targets in interleaved rounds (round 1: every target
// in order, then round 2, ...), so that a change in the machine's load
// touches every target alike; then, when Homing is a target, a run of
// Homing paced at half its median delivered rate, for the latency at half
// load.
func compare(ctx context.Context, cfg config, progress io.Writer) *comparison {
	c := &comparison{Machine: thisMachine(), LoadBefore: loadAverage(), Rounds: cfg.Rounds, Targets: cfg.Targets,
		Params: params{N: cfg.N, Size: cfg.Size, C: cfg.sessions(), Accounts: cfg.Accounts, Domain: cfg.Domain, Target: strings.Join(cfg.Targets, ",")}}
	for round := 1; round <= cfg.Rounds && ctx.Err() == nil; round++ {
		for _, t := range cfg.Targets {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(progress, "homing-load: round %d of %d: %s\n", round, cfg.Rounds, t)
			r := compareTarget(ctx, cfg, t, progress)
			r.Round = round
			fmt.Fprintf(progress, "homing-load: round %d %s: %s\n", round, t, r.line())
			c.Results = append(c.Results, r)
		}
	}
	c.summarize()
	if cfg.HalfLoad && ctx.Err() == nil {
		if s := c.summary(targetHoming); s != nil && s.DeliveredPerSec > 0 {
			h := cfg
			h.Rate = roundTo(s.DeliveredPerSec/2, 1)
			h.N = max(1, cfg.N/2)
			fmt.Fprintf(progress, "homing-load: half load: %d messages to Homing at %.1f msg/s\n", h.N, h.Rate)
			r := compareTarget(ctx, h, targetHoming, progress)
			r.RatePaced = h.Rate
			c.HalfLoad = &r
		}
	}
	c.LoadAfter = loadAverage()
	c.ratios(cfg.Size)
	return c
}

// line is a round's result on one progress line.
func (r roundResult) line() string {
	s := fmt.Sprintf("accepted %d (%.1f/s), delivered %d (%.1f/s, %.2f MB/s), DATA->250 p50 %.2f ms p99 %.2f ms",
		r.Accepted, r.AcceptedPerSec, r.Delivered, r.DeliveredPerSec, r.DeliveredMBps, r.Data250P50Ms, r.Data250P99Ms)
	if r.Error != "" {
		s += "; ERROR: " + oneLine(r.Error)
	}
	return s
}

// loadAverage is the first three fields of /proc/loadavg ("" where there
// is none).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
