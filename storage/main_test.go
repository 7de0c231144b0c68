package storage

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/goleak"
)

// Child processes. Tests that need a second process (a real kill -9, a
// flock held by another process) re-execute the test binary with
// helperEnv set; TestMain then runs the helper instead of the tests, so no
// fake test function is needed for it.
const (
	helperEnv    = "HOMING_STORAGE_HELPER"
	helperDirEnv = "HOMING_STORAGE_DIR"

	// helperCommitLoop opens the DB in helperDirEnv, commits keys from 8
	// goroutines for ever and prints each key on stdout once its Commit
	// returned nil.
	helperCommitLoop = "commit-loop"
	// helperHold opens the DB in helperDirEnv, prints "ready" and waits
	// until stdin is closed or it is killed.
	helperHold = "hold"
	// helperCommitLoopSyncfs is helperCommitLoop with a shared Syncer
	// (syncfs rounds instead of badger's per-transaction sync).
	helperCommitLoopSyncfs = "commit-loop-syncfs"
	// helperBadgerOpen calls badger.Open on helperDirEnv as it is, without
	// this package's inspection of the files, and exits 0 if it returns
	// (TestBadgerOpenCrashesOnTruncatedTable).
	helperBadgerOpen = "badger-open"
	// helperLockOnly takes only Homing's lock on helperDirEnv (the OFD
	// lock of its homing.lock), prints "ready" and waits like helperHold.
	helperLockOnly = "lock-only"
	// helperOlderHoming opens helperDirEnv as a Homing before issue #13
	// did: badger.Open with badger's own directory lock (flock) and no
	// homing.lock. It prints "ready" and waits like helperHold, or prints
	// "locked" and exits 0 when badger's lock is held.
	helperOlderHoming = "older-homing"
	// helperStepCommit opens the DB in helperDirEnv (with a shared Syncer
	// when helperSyncEnv is set) and reads commands from stdin: "c KEY"
	// commits KEY and answers "ok KEY", or "err KEY fenced|failed MSG";
	// "close" closes the DB, answers "closed" and exits.
	helperStepCommit = "step-commit"
	helperSyncEnv    = "HOMING_STORAGE_SYNCFS"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role, os.Getenv(helperDirEnv)))
	}
	goleak.VerifyTestMain(m)
}

func runHelper(role, dir string) int {
	var opt Options
	if role == helperBadgerOpen {
		o := opt.normalized()
		bdb, err := badger.Open(badgerOptions(dir, o, queueProfile, &badgerLogger{log: o.Logger}))
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper badger.Open:", err)
			return 0
		}
		_ = bdb.Close()
		return 0
	}
	switch role {
	case helperLockOnly:
		l, err := acquireDirLock(dir, "helper", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper lock:", err)
			return 2
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = l.release()
		return 0
	case helperOlderHoming:
		o := opt.normalized()
		bdb, err := badger.Open(badgerOptions(dir, o, mailboxProfile, &badgerLogger{log: o.Logger}))
		if err != nil {
			fmt.Println("locked")
			fmt.Fprintln(os.Stderr, "helper older homing:", err)
			return 0
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = bdb.Close()
		return 0
	case helperStepCommit:
		return runStepCommit(dir, os.Getenv(helperSyncEnv) != "")
	}
	if role == helperCommitLoopSyncfs {
		syncer, err := NewSyncer(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper syncer:", err)
			return 2
		}
		opt.Syncer = syncer
		role = helperCommitLoop
	}
	db, err := Open(dir, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper open:", err)
		return 2
	}
	switch role {
	case helperHold:
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
	case helperCommitLoop:
		var mu sync.Mutex // one write(2) per line
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; ; i += 8 {
					var b Batch
					b.Set(durableKey(i), durableValue(i))
					if err := db.Commit(context.Background(), &b); err != nil {
						fmt.Fprintln(os.Stderr, "helper commit:", err)
						os.Exit(3)
					}
					mu.Lock()
					_, err := os.Stdout.WriteString(string(durableKey(i)) + "\n")
					mu.Unlock()
					if err != nil {
						os.Exit(4)
					}
				}
			}()
		}
		wg.Wait()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", role)
		return 2
	}
	if err := db.Close(); err != nil {
		return 5
	}
	return 0
}

// durableKey and durableValue are what the commit-loop helper writes. Values
// come in three sizes: in the LSM tree, just above the value-log threshold,
// and large, so that both of badger's logs are exercised.
func durableKey(i int) []byte { return fmt.Appendf(nil, "k%09d", i) }

func durableValue(i int) []byte {
	size := []int{16, 2 << 10, 40 << 10}[i%3]
	v := fmt.Appendf(nil, "value-%d-", i)
	for len(v) < size {
		v = append(v, byte('a'+i%26))
	}
	return v
}

// child is a running helper process.
type child struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stdin  io.WriteCloser
}

func startHelper(t *testing.T, role, dir string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+role, helperDirEnv+"="+dir), env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdout: bufio.NewReader(stdout), stdin: stdin}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.kill(t)
		}
	})
	return c
}

// readLine returns the next complete line of the child's stdout, without
// the newline; ok is false at EOF or on a partial last line.
func (c *child) readLine() (string, bool) {
	line, err := c.stdout.ReadString('\n')
	if err != nil {
		return "", false
	}
	return strings.TrimSuffix(line, "\n"), true
}

// kill sends SIGKILL and reaps the child. Unread output is discarded.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	_, _ = io.Copy(io.Discard, c.stdout)
	_ = c.stdin.Close()
	_ = c.cmd.Wait() // "signal: killed"
}
