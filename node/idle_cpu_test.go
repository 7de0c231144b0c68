package node_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// cpuTicks is the user and system time of process pid, in clock ticks
// (/proc/PID/stat fields 14 and 15; USER_HZ is 100 on Linux).
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// Issue #14, "idle node ~5% of a core (badger timers on 17 databases)":
// a real `homing serve` with 16 partitions and an account, once a
// delivery's account actor has passivated and its partitions are idle,
// uses under 1% of a core. (Each open badger database wakes its two
// compactors every 50 ms; idle partitions close their data.) The bound
// asserted is 2%, as the machine running the tests is shared; before
// idle partitions closed their data the node used 3-5%.
func TestIdleNodeUsesAlmostNoCPU(t *testing.T) {
	p := testkit.StartProcess(t, measuredBinary(), "idle", "--partitions", "16", "--demo=false", "--log-level", "warn",
		"--account-idle", "200ms", "--partition-idle", "500ms")
	pid := readyPID(t, p)
	c := admin.NewClient("http://"+p.Admin, "")
	ctx := context.Background()
	if _, err := c.CreateAccount(ctx, admin.CreateAccount{Address: "idle@example.test", Password: "quiet-hours-1234"}); err != nil {
		t.Fatal(err)
	}
	msg := testkit.Message("someone@example.net", "idle@example.test", "before the quiet", "one message")
	if _, err := testkit.Send(p.SMTP, "someone@example.net", []string{"idle@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, func() bool {
		ps, err := c.Partitions(ctx)
		if err != nil || len(ps) != 16 {
			return false
		}
		for _, st := range ps {
			if !st.Open || !st.Idle {
				return false
			}
		}
		return true
	}, "every partition idle (its data closed) and still open")

	const window = 15 * time.Second
	before, start := cpuTicks(t, pid), time.Now()
	<-time.After(window) // the measurement's window, not a synchronization
	ticks, elapsed := cpuTicks(t, pid)-before, time.Since(start)
	share := float64(ticks) / 100 / elapsed.Seconds()
	t.Logf("idle node: %d ticks of CPU in %v = %.2f%% of a core", ticks, elapsed.Round(time.Millisecond), 100*share)
	if share > 0.02 {
		t.Errorf("idle node used %.2f%% of a core, want under 2%% (target 1%%)", 100*share)
	}

	// The next delivery opens the data again and is stored.
	msg = testkit.Message("someone@example.net", "idle@example.test", "after the quiet", "another")
	if _, err := testkit.Send(p.SMTP, "someone@example.net", []string{"idle@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, func() bool {
		ms, err := c.Messages(ctx, "idle@example.test")
		return err == nil && len(ms) == 2
	}, "both messages stored")
}
