package tlog

import (
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeT is a testing.TB that records what is logged and what fails, and
// runs its cleanups when told to (end). Fatalf ends the calling goroutine,
// as testing.T's does.
type fakeT struct {
	testing.TB // the real test, for Helper
	mu         sync.Mutex
	logged     []string
	failed     []string
	cleanups   []func()
}

func (f *fakeT) Log(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logged = append(f.logged, fmt.Sprint(args...))
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed = append(f.failed, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeT) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// end runs the cleanups, last registered first, as a test's end does.
func (f *fakeT) end() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func (f *fakeT) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.logged...)
}

func TestNewWritesEachRecordIntoTheTestLogWithTheName(t *testing.T) {
	f := &fakeT{TB: t}
	log := New(f, "be1")
	log.Info("partition opened", "partition", 3)
	log.With("node", "be1").WithGroup("g").Warn("slow", "ms", 120)
	log.Debug("detail")
	got := f.lines()
	want := []string{
		`[be1] level=INFO msg="partition opened" partition=3`,
		`[be1] level=WARN msg=slow node=be1 g.ms=120`,
		`[be1] level=DEBUG msg=detail`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMinLevelDropsTheRecordsBelowIt(t *testing.T) {
	f := &fakeT{TB: t}
	log := New(f, "n", MinLevel(slog.LevelWarn))
	log.Debug("debug")
	log.Info("info")
	log.Warn("warn")
	log.Error("error")
	if got := strings.Join(f.lines(), "\n"); got != "[n] level=WARN msg=warn\n[n] level=ERROR msg=error" {
		t.Fatalf("logged %q, want the warning and the error only", got)
	}
	if log.Enabled(t.Context(), slog.LevelInfo) {
		t.Error("Enabled(Info) = true below the minimum level")
	}
}

// TestRecordsAfterTheTestAreDropped: t.Log after a top-level test and its
// cleanups have completed panics ("Log in goroutine after ... has
// completed"), which cannot be shown in-process; the fake shows that
// nothing reaches t.Log once the cleanups have run.
func TestRecordsAfterTheTestAreDropped(t *testing.T) {
	f := &fakeT{TB: t}
	log := New(f, "n")
	log.Info("during")
	f.end()
	log.Info("after")
	done := make(chan struct{})
	go func() { // as a goroutine the test forgot would
		defer close(done)
		log.With("k", "v").Error("after, from another goroutine")
	}()
	<-done
	if got := f.lines(); len(got) != 1 || !strings.Contains(got[0], "during") {
		t.Fatalf("logged %q, want only the record written during the test", got)
	}
}

func TestLinesKeepsWhatIsWrittenForCountAndWaitCount(t *testing.T) {
	f := &fakeT{TB: t}
	var lines Lines
	a := New(f, "a", KeepIn(&lines))
	b := New(f, "b", KeepIn(&lines), MinLevel(slog.LevelInfo))
	a.Info("refusing node y", "reason", "wrong secret")
	b.Debug("refusing node z") // below b's level: neither logged nor kept
	b.Info("filter program says", "text", "holding 1")

	if n := lines.Count(`msg="refusing node`, "wrong secret"); n != 1 {
		t.Errorf("Count(refusing, wrong secret) = %d, want 1", n)
	}
	if n := lines.Count("refusing node"); n != 1 {
		t.Errorf("Count(refusing node) = %d, want 1 (the debug record was not kept)", n)
	}
	if n := lines.Count(`text="holding`); n != 1 {
		t.Errorf("Count(text=\"holding) = %d, want 1", n)
	}
	if all := lines.All(); len(all) != 2 || strings.HasPrefix(all[0], "[") {
		t.Errorf("All() = %q, want two lines without the name prefix", all)
	}
	if s := lines.String(); strings.Count(s, "\n") != 2 {
		t.Errorf("String() = %q, want two lines", s)
	}

	go func() {
		for i := range 3 {
			a.Info("tick", "i", i)
		}
	}()
	lines.WaitCount(f, 3, 10*time.Second, "msg=tick")
	f.end() // the writer goroutine is done: WaitCount saw its last line
}

func TestWaitCountFailsWhenTheLinesDoNotCome(t *testing.T) {
	f := &fakeT{TB: t}
	var lines Lines
	log := New(f, "n", KeepIn(&lines))
	log.Info("tick")
	start := time.Now()
	returned := make(chan bool, 1)
	go func() {
		defer func() { returned <- false }()
		lines.WaitCount(f, 2, 40*time.Millisecond, "tick")
		returned <- true
	}()
	if <-returned {
		t.Fatal("WaitCount returned with one line of two")
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("WaitCount gave up after %v, before its 40ms", d)
	}
	if len(f.failed) != 1 || !strings.Contains(f.failed[0], `1 log lines containing ["tick"], want 2`) {
		t.Fatalf("failures = %q, want one with the count and the parts", f.failed)
	}
}
