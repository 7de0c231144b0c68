package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A whole comparison with the real private Postfix and smtp-sink and the
// fake node for Homing: 20 messages each, 2 rounds, the half-load run;
// every count must add up, and nothing is left behind.
func TestCompareEndToEnd(t *testing.T) {
	exe, tmp := spawnEnv(t)
	// The private Postfix's daemons and deliveries run as other users.
	for _, d := range []string{tmp, filepath.Dir(tmp)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb strings.Builder
	code := runMain([]string{"--spawn", exe, "--targets", "homing,postfix,sink", "--rounds", "2", "--n", "20", "--c", "4",
		"--accounts", "3", "--size", "2000", "--json", "--timeout", "1m"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out.String(), errb.String())
	}
	var c comparison
	if err := json.Unmarshal([]byte(out.String()), &c); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	var order []string
	for _, r := range c.Results {
		order = append(order, r.Target)
		// The fake node's stats say 1 and 2 ms.
		if r.Target == targetHoming && (r.StoreP50Ms != 1 || r.StoreP99Ms != 2) {
			t.Errorf("round %d: received->stored %v/%v ms", r.Round, r.StoreP50Ms, r.StoreP99Ms)
		}
		if !r.ok() || r.Accepted != 20 || r.Delivered != 20 || r.Failures != 0 || r.DeliveredPerSec <= 0 || r.DeliveredMBps <= 0 || r.Data250P99Ms <= 0 {
			t.Errorf("round %d %s: %+v", r.Round, r.Target, r)
		}
	}
	if strings.Join(order, ",") != "homing,postfix,sink,homing,postfix,sink" {
		t.Errorf("rounds not interleaved: %v", order)
	}
	if len(c.Summary) != 3 || c.summary(targetPostfix) == nil || c.summary(targetPostfix).Valid != 2 {
		t.Errorf("summary %+v", c.Summary)
	}
	h := c.HalfLoad
	if h == nil || !h.ok() || h.Accepted != 10 || h.RatePaced <= 0 || h.RatePaced != roundTo(c.summary(targetHoming).DeliveredPerSec/2, 1) {
		t.Errorf("half load %+v", h)
	}
	names := map[string]bool{}
	for _, r := range c.Ratios {
		names[r.Name] = true
	}
	if !names["homing/postfix delivered"] || !names["homing/sink delivered"] || len(c.Ratios) != 3 {
		t.Errorf("ratios %+v", c.Ratios)
	}
	if left := entries(t, tmp); len(left) != 0 {
		t.Errorf("left behind in TMPDIR: %v", left)
	}
}
