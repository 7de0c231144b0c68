package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
)

// comparison is a side-by-side run (--targets): every round of every
// target, the medians, the half-load run and the ratios the issue's
// targets are stated in. --json prints it as one object.
type comparison struct {
	Machine    machine  `json:"machine"`
	LoadBefore string   `json:"loadBefore"` // /proc/loadavg at the start
	LoadAfter  string   `json:"loadAfter"`
	Params     params   `json:"params"`
	Rounds     int      `json:"rounds"`
	Targets    []string `json:"targets"`

	Results  []roundResult   `json:"results"`
	Summary  []targetSummary `json:"summary"`
	HalfLoad *roundResult    `json:"halfLoad,omitempty"`
	Ratios   []ratio         `json:"ratios"`
}

// targetSummary is the median of a target's valid rounds.
type targetSummary struct {
	Target          string  `json:"target"`
	Runs            int     `json:"runs"`  // rounds run
	Valid           int     `json:"valid"` // of them, complete measurements
	AcceptedPerSec  float64 `json:"acceptedPerSec"`
	DeliveredPerSec float64 `json:"deliveredPerSec"`
	DeliveredMBps   float64 `json:"deliveredMBps"`
	Data250P50Ms    float64 `json:"data250P50Ms"`
	Data250P99Ms    float64 `json:"data250P99Ms"`
	BusyPercent     float64 `json:"busyPercent,omitempty"` // the machine's CPUs (roundResult.BusyPercent)
}

// ratio is one comparison with the target for it.
type ratio struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"` // "x" for a ratio, "ms"
	// Goal is the target as text (">= 8x"); Met whether Value meets it.
	Goal string `json:"goal"`
	Met  bool   `json:"met"`
}

// median is the middle value of vs (the mean of the two middle ones for
// an even count); 0 for none. vs is not changed.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// roundTo rounds v to digits decimals.
func roundTo(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// summarize computes the median of every target over its valid rounds.
func (c *comparison) summarize() {
	c.Summary = nil
	for _, t := range c.Targets {
		s := targetSummary{Target: t}
		var acc, del, mb, p50, p99, busy []float64
		for _, r := range c.Results {
			if r.Target != t {
				continue
			}
			s.Runs++
			if !r.ok() {
				continue
			}
			s.Valid++
			acc, del, mb = append(acc, r.AcceptedPerSec), append(del, r.DeliveredPerSec), append(mb, r.DeliveredMBps)
			p50, p99 = append(p50, r.Data250P50Ms), append(p99, r.Data250P99Ms)
			if r.BusyPercent > 0 {
				busy = append(busy, r.BusyPercent)
			}
		}
		s.AcceptedPerSec, s.DeliveredPerSec = roundTo(median(acc), 1), roundTo(median(del), 1)
		s.DeliveredMBps = roundTo(median(mb), 2)
		s.Data250P50Ms, s.Data250P99Ms = roundTo(median(p50), 3), roundTo(median(p99), 3)
		s.BusyPercent = roundTo(median(busy), 1)
		c.Summary = append(c.Summary, s)
	}
}

// busyText is a busy percent for the tables; "-" where /proc/stat did
// not tell.
func busyText(v float64) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

// summary is the summary of target t, nil if it was not run or has no
// valid round.
func (c *comparison) summary(t string) *targetSummary {
	for i := range c.Summary {
		if c.Summary[i].Target == t && c.Summary[i].Valid > 0 {
			return &c.Summary[i]
		}
	}
	return nil
}

// postfixGoal is issue #14's target for Homing/Postfix at a message size:
// 8x for small messages (4 KiB), 2x at 100 KiB, 1.5x at 5 MiB.
func postfixGoal(size int) float64 {
	switch {
	case size < 64<<10:
		return 8
	case size < 1<<20:
		return 2
	default:
		return 1.5
	}
}

// ratios computes the ratios of the medians, each with its goal: Homing
// over Postfix and over the sink, the cluster over the single node, and
// the p99 at half load.
func (c *comparison) ratios(size int) {
	c.Ratios = nil
	h, pf, sink, cl := c.summary(targetHoming), c.summary(targetPostfix), c.summary(targetSink), c.summary(targetCluster)
	add := func(name string, num, den float64, goal float64) {
		if den <= 0 {
			return
		}
		v := roundTo(num/den, 2)
		c.Ratios = append(c.Ratios, ratio{Name: name, Value: v, Unit: "x", Goal: fmt.Sprintf(">= %gx", goal), Met: v >= goal})
	}
	if h != nil && pf != nil {
		if size >= 64<<10 {
			add("homing/postfix MB/s delivered", h.DeliveredMBps, pf.DeliveredMBps, postfixGoal(size))
		} else {
			add("homing/postfix delivered", h.DeliveredPerSec, pf.DeliveredPerSec, postfixGoal(size))
		}
	}
	if h != nil && sink != nil {
		add("homing/sink delivered", h.DeliveredPerSec, sink.DeliveredPerSec, 0.40)
	}
	if cl != nil && h != nil {
		add("cluster/single delivered", cl.DeliveredPerSec, h.DeliveredPerSec, 0.9)
	}
	if hl := c.HalfLoad; hl != nil && hl.ok() {
		c.Ratios = append(c.Ratios, ratio{Name: fmt.Sprintf("homing p99 DATA->250 at half load (%.0f msg/s)", hl.RatePaced),
			Value: hl.Data250P99Ms, Unit: "ms", Goal: "< 10 ms", Met: hl.Data250P99Ms < 10})
	}
}

// OK reports whether every round and the half-load run measured.
func (c *comparison) OK() bool {
	if len(c.Results) == 0 {
		return false
	}
	for _, r := range c.Results {
		if !r.ok() {
			return false
		}
	}
	return c.HalfLoad == nil || c.HalfLoad.ok()
}

// writeJSON prints the comparison as one indented JSON object.
func (c *comparison) writeJSON(w io.Writer) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeText prints the comparison as tables: every round, the medians
// side by side, and the ratios.
func (c *comparison) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := c.Params
	fmt.Fprintf(tw, "machine\t%d CPUs, %s, %s %s; load average %s at the start, %s at the end\n",
		c.Machine.NProc, c.Machine.CPU, c.Machine.GoVersion, c.Machine.OS, c.LoadBefore, c.LoadAfter)
	fmt.Fprintf(tw, "params\tn=%d size=%d c=%d accounts=%d domain=%s rounds=%d, interleaved: %s\n", p.N, p.Size, p.C, p.Accounts, p.Domain, c.Rounds, p.Target)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "round\ttarget\taccepted/s\tdelivered/s\tMB/s\tDATA->250 p50\tp99 ms\tbusy %\tresult")
	rows := c.Results
	if c.HalfLoad != nil {
		rows = append(slices.Clone(rows), *c.HalfLoad)
	}
	for _, r := range rows {
		round := fmt.Sprint(r.Round)
		if r.RatePaced > 0 {
			round = fmt.Sprintf("half (%.0f/s)", r.RatePaced)
		}
		result := fmt.Sprintf("%d accepted, %d delivered", r.Accepted, r.Delivered)
		if r.Error != "" {
			result += ": " + truncate(oneLine(r.Error), 160)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%s\t%s\n", round, r.Target, r.AcceptedPerSec, r.DeliveredPerSec, r.DeliveredMBps, r.Data250P50Ms, r.Data250P99Ms, busyText(r.BusyPercent), result)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "median\ttarget\taccepted/s\tdelivered/s\tMB/s\tDATA->250 p50\tp99 ms\tbusy %\tvalid rounds")
	for _, s := range c.Summary {
		fmt.Fprintf(tw, "\t%s\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%s\t%d of %d\n", s.Target, s.AcceptedPerSec, s.DeliveredPerSec, s.DeliveredMBps, s.Data250P50Ms, s.Data250P99Ms, busyText(s.BusyPercent), s.Valid, s.Runs)
	}
	if len(c.Ratios) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "ratio\tvalue\tgoal\tmet")
		for _, r := range c.Ratios {
			met := "no"
			if r.Met {
				met = "yes"
			}
			v := fmt.Sprintf("%.2fx", r.Value)
			if r.Unit != "x" {
				v = fmt.Sprintf("%.2f %s", r.Value, r.Unit)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, v, r.Goal, met)
		}
	}
	return tw.Flush()
}

// truncate shortens s to n bytes with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
