// Package tlog makes *slog.Logger values that write into a test's log:
// tlog.New(t, "be1") gives a logger whose records appear in t.Log as
//
//	[be1] level=INFO msg="partition opened" partition=3
//
// (slog's text format without the time, which the test output has). A
// logger stays safe to use after its test has ended: records written
// after the test's cleanups ran are dropped instead of making t.Log
// panic, so a goroutine that outlives the test cannot crash the binary.
// Lines can keep the lines too, for tests that wait for a log line.
//
// It imports nothing from Homing, so the tests of every package can use it.
package tlog

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// Option changes what a logger made by New writes.
type Option func(*options)

type options struct {
	level slog.Leveler
	keep  *Lines
}

// MinLevel drops the records below level (by default every record is
// written, Debug included).
func MinLevel(level slog.Leveler) Option {
	return func(o *options) { o.level = level }
}

// KeepIn also appends every line written (without the name prefix) to
// lines, for Count and WaitCount. Several loggers may keep into the same
// Lines.
func KeepIn(lines *Lines) Option {
	return func(o *options) { o.keep = lines }
}

// New returns a logger that writes every record into t.Log, prefixed with
// [name], until the test ends; later records are dropped. Handlers made
// from it (With, WithGroup) write to the same place.
func New(t testing.TB, name string, opts ...Option) *slog.Logger {
	o := options{level: slog.LevelDebug}
	for _, opt := range opts {
		opt(&o)
	}
	w := &testWriter{t: t, prefix: "[" + name + "] ", keep: o.keep}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: o.level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// testWriter receives one record per Write from the text handler and
// passes it to t.Log until stop.
type testWriter struct {
	t      testing.TB
	prefix string
	keep   *Lines

	mu      sync.Mutex
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return len(p), nil
	}
	w.t.Log(w.prefix + line)
	if w.keep != nil {
		w.keep.add(line)
	}
	return len(p), nil
}

// stop makes later writes drop their record. It runs as a cleanup of the
// test, after the cleanups registered later (which may still log).
func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
