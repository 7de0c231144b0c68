package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// spawnEnv makes --spawn start this test binary as a fake node, and puts
// a fake smtp-source first on PATH; temporary directories go to a
// directory of the test's own so that their removal can be checked.
func spawnEnv(t *testing.T) (exe, tmp string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp = t.TempDir()
	bin := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(bin, "smtp-source")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOMING_LOAD_FAKE_NODE", "1")
	t.Setenv("TMPDIR", tmp)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return exe, tmp
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestSpawnRunEndToEnd(t *testing.T) {
	exe, tmp := spawnEnv(t)
	var out, errb strings.Builder
	code := runMain([]string{"--spawn", exe, "--n", "60", "--c", "3", "--accounts", "5", "--size", "1500", "--json", "--smtp-source", "--timeout", "30s"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out.String(), errb.String())
	}
	var rep report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if rep.Accepted != 60 || rep.Delivered != 60 || !rep.DeliveryComplete || rep.NodeStop != "" || rep.Params.Target != "spawned "+exe {
		t.Errorf("report %+v", rep)
	}
	s := rep.SMTPSource
	if s == nil || s.Skipped != "" || s.Completed != 60 || s.Delivered != 60 || !s.DeliveryComplete || s.AcceptedPerSec <= 0 || s.Error != "" {
		t.Errorf("smtp-source report %+v", s)
	}
	if left := entries(t, tmp); len(left) != 0 {
		t.Errorf("left behind in TMPDIR: %v", left)
	}
	if !strings.Contains(errb.String(), "homing-load: node ready: smtp 127.0.0.1:") {
		t.Errorf("progress %q", errb.String())
	}
}

func TestSpawnKeep(t *testing.T) {
	exe, tmp := spawnEnv(t)
	// A relative --spawn path works although the node runs in its own
	// directory.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if exe, err = filepath.Rel(wd, exe); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	if code := runMain([]string{"--spawn", exe, "--n", "5", "--c", "1", "--accounts", "1", "--keep", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(rep.NodeDir) != tmp {
		t.Fatalf("node dir %q not under TMPDIR %q", rep.NodeDir, tmp)
	}
	log, err := os.ReadFile(filepath.Join(rep.NodeDir, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	want := "fake node args: serve --data " + filepath.Join(rep.NodeDir, "data") + " --smtp 127.0.0.1:"
	if !strings.Contains(string(log), want) || !strings.Contains(string(log), "--domains example.test --name bench") ||
		!strings.HasSuffix(string(log), "stopped\n") {
		t.Errorf("node log %q, want %q and a clean stop", log, want)
	}
	if st, err := os.Stat(filepath.Join(rep.NodeDir, "data")); err != nil || !st.IsDir() {
		t.Errorf("data dir: %v", err)
	}
}

func TestSpawnNodeThatCrashes(t *testing.T) {
	exe, tmp := spawnEnv(t)
	t.Setenv("HOMING_LOAD_FAKE_MODE", "crash")
	var out, errb strings.Builder
	code := runMain([]string{"--spawn", exe, "--n", "5"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "exited before it was ready") || !strings.Contains(errb.String(), "boom: cannot open the data directory") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	if out.Len() != 0 {
		t.Errorf("a report without a run: %q", out.String())
	}
	if left := entries(t, tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestSpawnedNodeIgnoringSIGTERMIsKilled(t *testing.T) {
	exe, tmp := spawnEnv(t)
	t.Setenv("HOMING_LOAD_FAKE_MODE", "ignore-term")
	cfg, err := parseArgs([]string{"--spawn", exe}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StopTimeout = 300 * time.Millisecond
	n, err := spawnNode(context.Background(), cfg, nodeReady)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = n.Stop(cfg.StopTimeout, false)
	if err == nil || !strings.Contains(err.Error(), "killed") || time.Since(start) < cfg.StopTimeout {
		t.Errorf("Stop = %v after %v", err, time.Since(start))
	}
	if left := entries(t, tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
