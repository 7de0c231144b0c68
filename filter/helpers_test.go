package filter

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// recorder is a slog.Handler that logs to t.Log and keeps the records, so
// that a test can wait for a line the filter program wrote.
type recorder struct {
	t     testing.TB
	attrs []slog.Attr
	s     *recorderState
}

type recorderState struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every record
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, s: &recorderState{changed: make(chan struct{})}}
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Time.Format("15:04:05.000") + " " + rec.Level.String() + " " + rec.Message)
	for _, a := range r.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	line := b.String()
	r.t.Log(line)
	r.s.mu.Lock()
	r.s.lines = append(r.s.lines, line)
	close(r.s.changed)
	r.s.changed = make(chan struct{})
	r.s.mu.Unlock()
	return nil
}

func (r *recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &recorder{t: r.t, attrs: append(append([]slog.Attr(nil), r.attrs...), attrs...), s: r.s}
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

// count is the number of records containing substr.
func (r *recorder) count(substr string) int {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	n := 0
	for _, l := range r.s.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// waitCount waits until n records contain substr.
func (r *recorder) waitCount(t testing.TB, substr string, n int) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		r.s.mu.Lock()
		ch := r.s.changed
		r.s.mu.Unlock()
		if r.count(substr) >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %d log records containing %q within 20s (got %d)", n, substr, r.count(substr))
		}
	}
}

// env is one filter under test with its registry and log.
type env struct {
	f   *Filter
	reg *prometheus.Registry
	log *recorder
	dir string // for message files
}

// start starts a filter running command with cfg's other settings, and
// closes it when the test ends.
func start(t *testing.T, cfg Config, command ...string) *env {
	t.Helper()
	e := &env{reg: prometheus.NewRegistry(), log: newRecorder(t), dir: t.TempDir()}
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	cfg.Command = command
	cfg.Logger = slog.New(e.log)
	if cfg.Restart == 0 {
		cfg.Restart = 10 * time.Millisecond
	}
	if cfg.Grace == 0 {
		cfg.Grace = 2 * time.Second
	}
	f, err := Start(cfg, NewMetrics(e.reg))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	e.f = f
	t.Cleanup(func() { _ = f.Close() })
	return e
}

// startExample starts the example filter with args.
func startExample(t *testing.T, cfg Config, args ...string) *env {
	t.Helper()
	return start(t, cfg, append([]string{exampleBin}, args...)...)
}

// message writes a message file with the subject and extra header fields.
func (e *env) message(t testing.TB, subject string, fields ...string) string {
	t.Helper()
	body := "From: <a@example.net>\r\nTo: <b@example.test>\r\n"
	for _, f := range fields {
		body += f + "\r\n"
	}
	body += "Subject: " + subject + "\r\n\r\nHello.\r\n"
	path, err := WriteMessageFile(e.dir, "a@example.net", []string{"b@example.test"}, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// metric is the value of a counter or gauge, or the sample count of a
// histogram, with exactly the labels given (0 if absent).
func (e *env) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// eventually polls cond every 5 ms until it holds or 20 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// script writes a shell script filter into a temporary directory and
// returns the command that runs it.
func script(t testing.TB, body string, args ...string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "filter.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return append([]string{"/bin/sh", path}, args...)
}

// answering is a shell filter that answers INTF, and every FILE request
// with the fixed text of its first argument after the sequence number.
const answering = `while IFS=' ' read -r seq cmd rest; do
	case "$cmd" in
	INTF) printf '%s INTF 3\n' "$seq" ;;
	FILE) printf '%s %s\n' "$seq" "$1" ;;
	esac
done
`
