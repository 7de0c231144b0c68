package node_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// storeThatCannotFlush starts a node, writes to a partition and removes
// the data directory under it: badger's flush of that memtable then
// fails (and retries every second) at every attempt, so a graceful
// close never finishes.
func storeThatCannotFlush(t *testing.T, args ...string) *testkit.Process {
	t.Helper()
	p := testkit.StartProcess(t, homingBin, "n1", append([]string{"--domains", "example.test"}, args...)...)
	c := admin.NewClient("http://"+p.Admin, "")
	if _, err := c.CreateAccount(context.Background(), admin.CreateAccount{Address: "ann@example.test", Password: "secret-words-1"}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(p.Data); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeShutdownIsBounded: SIGTERM to a node whose store cannot flush
// ends the process after --shutdown-timeout with status 1 and the reason,
// instead of hanging until something kills it.
func TestServeShutdownIsBounded(t *testing.T) {
	p := storeThatCannotFlush(t, "--shutdown-timeout", "2s")
	start := time.Now()
	st, exited := p.Terminate(30 * time.Second)
	if !exited {
		t.Fatalf("still running 30 s after SIGTERM with --shutdown-timeout 2s\n%s", p.Log())
	}
	took := time.Since(start)
	if st.ExitCode() != 1 || took < 2*time.Second {
		t.Errorf("exit status %d after %v; want 1 after at least 2s", st.ExitCode(), took)
	}
	if log := p.Log(); !strings.Contains(log, "shutdown did not finish within 2s") {
		t.Errorf("the log does not say why the shutdown was cut short:\n%s", log)
	}
}

// TestServeSecondSignalEndsTheShutdown: once a shutdown runs, a second
// SIGTERM ends the process at once.
func TestServeSecondSignalEndsTheShutdown(t *testing.T) {
	p := storeThatCannotFlush(t, "--shutdown-timeout", "1h")
	p.Signal(syscall.SIGTERM)
	wait.For(t, 20*time.Second, func() bool { return strings.Contains(p.Log(), "homing: shutting down") },
		"the node did not start shutting down")
	st, exited := p.Terminate(20 * time.Second)
	if !exited {
		t.Fatalf("still running 20 s after the second SIGTERM\n%s", p.Log())
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("exit %v; want the end by the second SIGTERM", st)
	}
}
