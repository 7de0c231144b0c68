package ctl

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
)

func TestActorsAndStats(t *testing.T) {
	e := newTestEnv(t, "")
	out := e.run("", "actors").ok(t).stdout
	if out != "KIND     COUNT\naccount  3\nqueue    2\ntotal    5\n" {
		t.Errorf("actors:\n%s", out)
	}
	out = e.run("", "stats").ok(t).stdout
	row(t, out, "accepted:", "10")
	row(t, out, "delivered", "local:", "8")
	row(t, out, "store", "latency", "p50:", "2.1", "ms")
	row(t, out, "store", "latency", "p99:", "10.5", "ms")
	row(t, out, "since:", t0.Local().Format(time.RFC3339))
	aligned(t, out, "accepted:", 8)

	var st admin.Stats
	if err := json.Unmarshal([]byte(e.run("", "stats", "--json").ok(t).stdout), &st); err != nil || !reflect.DeepEqual(st, e.fake.Counters) {
		t.Errorf("--json stats %+v %v", st, err)
	}
}
