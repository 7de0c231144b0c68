package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	cases := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{5}, 5},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 1000, 20}, 20}, // an outlier does not move it
	}
	for _, c := range cases {
		in := append([]float64(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Fatalf("median changed its input: %v -> %v", in, c.in)
			}
		}
	}
}

func TestPostfixGoal(t *testing.T) {
	for size, want := range map[int]float64{4096: 8, 100 << 10: 2, 5 << 20: 1.5} {
		if got := postfixGoal(size); got != want {
			t.Errorf("postfixGoal(%d) = %v, want %v", size, got, want)
		}
	}
}

// sample is a comparison of three rounds with one failed Postfix round
// and a half-load run.
func sample() *comparison {
	res := func(target string, round int, acc, del float64, p99 float64) roundResult {
		return roundResult{Target: target, Round: round, Accepted: 100, Delivered: 100, Complete: true,
			AcceptedPerSec: acc, DeliveredPerSec: del, DeliveredMBps: megabytes(del, 4096), Data250P50Ms: p99 / 2, Data250P99Ms: p99}
	}
	c := &comparison{Rounds: 3, Targets: []string{targetHoming, targetPostfix, targetSink, targetCluster},
		Params: params{N: 100, Size: 4096, C: 20, Accounts: 5, Domain: "example.test", Target: "homing,postfix,sink,cluster"}}
	c.Results = []roundResult{
		res(targetHoming, 1, 1100, 1000, 20), res(targetPostfix, 1, 410, 400, 50), res(targetSink, 1, 10000, 10000, 1), res(targetCluster, 1, 800, 800, 30),
		res(targetHoming, 2, 1300, 1200, 25), {Target: targetPostfix, Round: 2, Accepted: 100, Delivered: 40, Error: "40 of 100 messages in the Maildirs' new/ after 10m"},
		res(targetSink, 2, 12000, 12000, 1), res(targetCluster, 2, 1000, 1000, 30),
		res(targetHoming, 3, 900, 800, 30), res(targetPostfix, 3, 210, 200, 60), res(targetSink, 3, 11000, 11000, 1), res(targetCluster, 3, 900, 900, 30),
	}
	c.summarize()
	hl := res(targetHoming, 0, 500, 500, 8)
	hl.RatePaced = 500
	c.HalfLoad = &hl
	c.ratios(4096)
	return c
}

func TestSummaryIsTheMedianOfValidRounds(t *testing.T) {
	c := sample()
	h, pf, sink := c.summary(targetHoming), c.summary(targetPostfix), c.summary(targetSink)
	if h == nil || h.DeliveredPerSec != 1000 || h.AcceptedPerSec != 1100 || h.Data250P99Ms != 25 || h.Valid != 3 || h.Runs != 3 {
		t.Errorf("homing %+v", h)
	}
	// The failed round is left out: the median of 400 and 200.
	if pf == nil || pf.DeliveredPerSec != 300 || pf.Valid != 2 || pf.Runs != 3 {
		t.Errorf("postfix %+v", pf)
	}
	if sink == nil || sink.DeliveredPerSec != 11000 || sink.DeliveredMBps != 45.06 {
		t.Errorf("sink %+v", sink)
	}
	if c.OK() {
		t.Error("OK with a failed round")
	}
	if c.summary("nothing") != nil {
		t.Error("a summary of a target that did not run")
	}
}

func TestRatiosWithGoals(t *testing.T) {
	c := sample()
	want := map[string]ratio{
		"homing/postfix delivered":                      {Value: 3.33, Unit: "x", Goal: ">= 8x", Met: false},
		"homing/sink delivered":                         {Value: 0.09, Unit: "x", Goal: ">= 0.4x", Met: false},
		"cluster/single delivered":                      {Value: 0.9, Unit: "x", Goal: ">= 0.9x", Met: true},
		"homing p99 DATA->250 at half load (500 msg/s)": {Value: 8, Unit: "ms", Goal: "< 10 ms", Met: true},
	}
	if len(c.Ratios) != len(want) {
		t.Fatalf("ratios %+v", c.Ratios)
	}
	for _, r := range c.Ratios {
		w, ok := want[r.Name]
		w.Name = r.Name
		if !ok || r != w {
			t.Errorf("ratio %+v, want %+v", r, w)
		}
	}
}

func TestRatioOfLargeMessagesIsMBPerSecond(t *testing.T) {
	c := &comparison{Targets: []string{targetHoming, targetPostfix}, Results: []roundResult{
		{Target: targetHoming, Round: 1, Accepted: 10, Delivered: 10, Complete: true, DeliveredPerSec: 20, DeliveredMBps: 104.86},
		{Target: targetPostfix, Round: 1, Accepted: 10, Delivered: 10, Complete: true, DeliveredPerSec: 25, DeliveredMBps: 131.07},
	}}
	c.summarize()
	c.ratios(5 << 20)
	if len(c.Ratios) != 1 || c.Ratios[0].Name != "homing/postfix MB/s delivered" || c.Ratios[0].Value != 0.8 || c.Ratios[0].Goal != ">= 1.5x" || c.Ratios[0].Met {
		t.Errorf("ratios %+v", c.Ratios)
	}
}

func TestNoRatioWithoutAValidRound(t *testing.T) {
	c := &comparison{Targets: []string{targetHoming, targetPostfix}, Results: []roundResult{
		{Target: targetHoming, Round: 1, Accepted: 10, Delivered: 10, Complete: true, DeliveredPerSec: 20},
		{Target: targetPostfix, Round: 1, Error: "starting the private Postfix: no"},
	}}
	c.summarize()
	c.ratios(4096)
	if len(c.Ratios) != 0 {
		t.Errorf("ratios %+v", c.Ratios)
	}
}

func TestComparisonText(t *testing.T) {
	var b strings.Builder
	if err := sample().writeText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"rounds=3, interleaved: homing,postfix,sink,cluster",
		"accepted/s  delivered/s  MB/s", "median  target",
		"100 accepted, 40 delivered: 40 of 100 messages",
		"half (500/s)  homing",
		"homing/postfix delivered", "3.33x", ">= 8x", "no",
		"homing p99 DATA->250 at half load (500 msg/s)", "8.00 ms", "< 10 ms", "yes",
		"2 of 3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	// One line per round, the half-load run, and a median per target.
	var rounds, medians int
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && (f[0] == "1" || f[0] == "2" || f[0] == "3") {
			rounds++
		}
		if len(f) > 1 && strings.HasPrefix(l, "        ") && (f[0] == targetHoming || f[0] == targetPostfix || f[0] == targetSink || f[0] == targetCluster) {
			medians++
		}
	}
	if rounds != 12 || medians != 4 {
		t.Errorf("%d round lines, %d median lines:\n%s", rounds, medians, out)
	}
}

func TestComparisonJSON(t *testing.T) {
	var b strings.Builder
	if err := sample().writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back comparison
	if err := json.Unmarshal([]byte(b.String()), &back); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	if len(back.Results) != 12 || len(back.Summary) != 4 || len(back.Ratios) != 4 || back.HalfLoad == nil || back.HalfLoad.RatePaced != 500 {
		t.Errorf("round trip %+v", back)
	}
}

// The machine's busy percent is the median of the valid rounds that
// measured it, and the tables show it ("-" where nothing measured it).
func TestBusyPercentColumn(t *testing.T) {
	c := sample()
	busy := map[string][]float64{targetHoming: {90, 95, 80}, targetCluster: {97, 99, 0}}
	for i := range c.Results {
		r := &c.Results[i]
		if b, ok := busy[r.Target]; ok {
			r.BusyPercent = b[r.Round-1]
		}
	}
	c.summarize()
	if h := c.summary(targetHoming); h.BusyPercent != 90 {
		t.Errorf("homing busy median %v, want 90", h.BusyPercent)
	}
	if cl := c.summary(targetCluster); cl.BusyPercent != 98 {
		t.Errorf("cluster busy median %v, want 98 (the round without a reading left out)", cl.BusyPercent)
	}
	var out strings.Builder
	if err := c.writeText(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"p99 ms  busy %  result", "p99 ms  busy %  valid rounds"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in:\n%s", want, text)
		}
	}
	var medPostfix string
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) > 7 && f[0] == targetPostfix {
			medPostfix = f[6]
		}
	}
	if medPostfix != "-" {
		t.Errorf("postfix's median busy %q, want - (no round measured it):\n%s", medPostfix, text)
	}
}
