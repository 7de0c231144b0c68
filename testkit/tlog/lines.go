package tlog

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// Lines keeps the lines of the loggers given KeepIn(lines), in the order
// they were written, for tests that assert on the log or wait for a line.
// The zero value is ready to use; it is safe for concurrent use.
type Lines struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced when a line is added
}

func (l *Lines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// All returns a copy of the lines kept so far.
func (l *Lines) All() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// String returns the lines kept so far, each ended by a newline.
func (l *Lines) String() string {
	var b strings.Builder
	for _, line := range l.All() {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// Count returns how many lines contain every one of parts (each as a
// substring of the line in slog's text format, as t.Log shows it: a
// string value with spaces is quoted, text="holding 1").
func (l *Lines) Count(parts ...string) int {
	n, _ := l.count(parts)
	return n
}

// count returns Count and a channel closed when the next line is added.
func (l *Lines) count(parts []string) (int, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, line := range l.lines {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		n++
	}
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return n, l.changed
}

// WaitCount waits until at least n lines contain every one of parts, and
// fails the test with t.Fatalf if they do not within timeout. It wakes on
// every new line, not on a timer.
func (l *Lines) WaitCount(t testing.TB, n int, timeout time.Duration, parts ...string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		got, changed := l.count(parts)
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			if got, _ = l.count(parts); got >= n {
				return
			}
			t.Fatalf("not within %v: %d log lines containing %q, want %d", timeout, got, parts, n)
		}
	}
}
