package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/homing-mail/homing/testkit"
)

// threadNices returns the nice value of every thread of process pid,
// from /proc/PID/task/TID/stat (field 19, after the command's
// parenthesis).
func threadNices(t *testing.T, pid int) map[int]int {
	t.Helper()
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		// fields[0] is stat's field 3 (state); nice is field 19.
		n, err := strconv.Atoi(fields[19-3])
		if err != nil {
			t.Fatalf("%s: %v", task.Name(), err)
		}
		tid, _ := strconv.Atoi(task.Name())
		out[tid] = n
	}
	return out
}

// `homing serve --nice 7` runs every thread of the node at nice 7: the
// ones the runtime started before the flag was read and the ones started
// after (the node's listeners, stores and actors are all running when
// this looks).
func TestServeNiceSetsEveryThread(t *testing.T) {
	bin, err := testkit.BuildHoming(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := testkit.StartProcess(t, bin, "nice1", "--nice", "7")
	nices := threadNices(t, p.PID())
	if len(nices) < 3 {
		t.Fatalf("%d threads: %v", len(nices), nices)
	}
	for tid, n := range nices {
		if n != 7 {
			t.Errorf("thread %d at nice %d, want 7 (all: %v)", tid, n, nices)
		}
	}
	// And the test's own threads are untouched: the priority is the
	// node's.
	for tid, n := range threadNices(t, os.Getpid()) {
		if n == 7 {
			t.Errorf("test thread %d at nice 7", tid)
		}
	}
}

// A nice value out of nice(2)'s range is refused before anything starts,
// by serve and by dev.
func TestServeNiceOutOfRange(t *testing.T) {
	for _, v := range []string{"20", "-21"} {
		var out, errb strings.Builder
		if code := run([]string{"serve", "--nice", v, "--data", t.TempDir()}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "want -20..19") {
			t.Errorf("serve --nice %s: exit %d, %q", v, code, errb.String())
		}
		out.Reset()
		errb.Reset()
		if code := run([]string{"dev", "--backend-nice", v, "--data", t.TempDir()}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "want -20..19") {
			t.Errorf("dev --backend-nice %s: exit %d, %q", v, code, errb.String())
		}
	}
}

// homing dev starts its backends, and only them, with --nice: the
// default devBackendNice, or --backend-nice; 0 passes none. The flag
// parses as serve's (the last of a repeated flag wins, so it comes after
// the arguments given after --).
func TestDevBackendsNice(t *testing.T) {
	fe := &devNode{name: "fe1", role: "frontend", gossip: "127.0.0.1:7946"}
	be := &devNode{name: "be1", role: "backend", gossip: "127.0.0.1:7948"}
	nice := func(args []string) string {
		v := ""
		for i, a := range args {
			if a == "--nice" && i+1 < len(args) {
				v = args[i+1]
			}
		}
		return v
	}
	o := devSettings{dir: t.TempDir(), domain: "example.test", seed: fe.gossip, partitions: 4, backendNice: devBackendNice,
		extra: []string{"--nice", "3"}}
	if got := nice(be.serveArgs(o)); got != strconv.Itoa(devBackendNice) {
		t.Errorf("backend: --nice %q, want %d", got, devBackendNice)
	}
	if got := nice(fe.serveArgs(o)); got != "3" {
		t.Errorf("frontend: --nice %q, want only the one after -- (3)", got)
	}
	o.backendNice, o.extra = 0, nil
	if got := nice(be.serveArgs(o)); got != "" {
		t.Errorf("--backend-nice 0: backend has --nice %q", got)
	}
	o.backendNice = 5
	if got := nice(be.serveArgs(o)); got != "5" {
		t.Errorf("--backend-nice 5: backend has --nice %q", got)
	}
}
