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
	u, err1 := strconv.Atoi(f[11])
	s, err2 := strconv.Atoi(f[12])
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return u + s
}

// idleShare is the share of a core process pid used over a 15 s window,
// logged with what the node is.
func idleShare(t *testing.T, pid int, what string) float64 {
	t.Helper()
	const window = 15 * time.Second
	before, start := cpuTicks(t, pid), time.Now()
	<-time.After(window) // the measurement's window, not a synchronization
	ticks, elapsed := cpuTicks(t, pid)-before, time.Since(start)
	share := float64(ticks) / 100 / elapsed.Seconds()
	t.Logf("%s: %d ticks of CPU in %v = %.2f%% of a core", what, ticks, elapsed.Round(time.Millisecond), 100*share)
	return share
}

// Issue #14, "idle node ~5% of a core (badger timers on 17 databases)":
// a real `homing serve` with 16 partitions and an account, once a
// delivery's account actor has passivated and its partitions are idle,
// uses under 1% of a core. (Idle partitions close their data; an open
// badger database's compactors back off, see the test below.) The bound
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

	if share := idleShare(t, pid, "idle node"); share > 0.02 {
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

// An idle node whose databases all stay open (--partition-idle=-1: its 16
// partitions, its queue and its journal, 18 badger databases) also uses
// under 1% of a core, because an idle badger compactor backs off
// (third_party/badger, compactIdleMax): upstream badger wakes each
// database's two compactors every 50 ms, about 1% of a core per open
// database alone on this machine, and the same node used 3.5% before
// (0.7% after). The bound asserted is 2%, as in
// TestIdleNodeUsesAlmostNoCPU.
func TestIdleNodeWithOpenDatabasesUsesAlmostNoCPU(t *testing.T) {
	p := testkit.StartProcess(t, measuredBinary(), "open-idle", "--partitions", "16", "--demo=false", "--log-level", "warn",
		"--account-idle", "200ms", "--partition-idle", "-1s")
	pid := readyPID(t, p)
	c := admin.NewClient("http://"+p.Admin, "")
	ctx := context.Background()
	allOpen := func() bool {
		ps, err := c.Partitions(ctx)
		if err != nil || len(ps) != 16 {
			return false
		}
		for _, st := range ps {
			if !st.Open || st.Idle {
				return false
			}
		}
		return true
	}
	// Accounts are placed by a hash of their address: add them until
	// every partition holds one and so has its data open.
	for i := 0; i == 0 || !allOpen(); i++ {
		if i == 1000 {
			t.Fatal("1,000 accounts and not every partition has its data open")
		}
		addr := "quiet" + strconv.Itoa(i) + "@example.test"
		if _, err := c.CreateAccount(ctx, admin.CreateAccount{Address: addr, Password: "quiet-hours-1234"}); err != nil {
			t.Fatal(err)
		}
	}
	msg := testkit.Message("someone@example.net", "quiet0@example.test", "before the quiet", "one message")
	if _, err := testkit.Send(p.SMTP, "someone@example.net", []string{"quiet0@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, func() bool {
		ms, err := c.Messages(ctx, "quiet0@example.test")
		return err == nil && len(ms) == 1
	}, "the message stored")

	share := idleShare(t, pid, "idle node, 18 databases open")
	if !allOpen() {
		t.Fatal("a partition closed its data during the window: the measurement is not of open databases")
	}
	if share > 0.02 {
		t.Errorf("idle node with its databases open used %.2f%% of a core, want under 2%% (target 1%%)", 100*share)
	}
}
