package testkit

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// Standalone returns a testing.TB for driving nodes and clusters outside
// `go test` — a runnable Example, a program, a tool — and the function that
// ends it: done runs the cleanups (last registered first, as testing does),
// removes its temporary directories and reports whether anything failed.
// Log output goes to log (io.Discard to drop it). Fatal and Fatalf panic
// with the message, which ends the caller; Error and Errorf record a
// failure and write it to stderr. Skip and the methods of testing.TB this
// type does not implement panic.
func Standalone(name string, log io.Writer) (t testing.TB, done func() (failed bool)) {
	s := &standalone{name: name, log: log}
	return s, s.done
}

type standalone struct {
	testing.TB // nil: what is not implemented below panics

	name string
	log  io.Writer

	mu       sync.Mutex
	failed   bool
	cleanups []func()
	dirs     []string
}

func (s *standalone) Name() string { return s.name }
func (s *standalone) Helper()      {}

func (s *standalone) Log(args ...any) { s.write(fmt.Sprintln(args...)) }
func (s *standalone) Logf(format string, args ...any) {
	s.write(fmt.Sprintf(format, args...) + "\n")
}

func (s *standalone) write(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log != nil {
		io.WriteString(s.log, line)
	}
}

func (s *standalone) Error(args ...any) { s.fail(fmt.Sprint(args...)) }
func (s *standalone) Errorf(format string, args ...any) {
	s.fail(fmt.Sprintf(format, args...))
}

func (s *standalone) Fatal(args ...any) {
	msg := fmt.Sprint(args...)
	s.fail(msg)
	panic(s.name + ": " + msg)
}

func (s *standalone) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.fail(msg)
	panic(s.name + ": " + msg)
}

func (s *standalone) fail(msg string) {
	s.mu.Lock()
	s.failed = true
	s.mu.Unlock()
	fmt.Fprintf(os.Stderr, "%s: %s\n", s.name, msg)
}

func (s *standalone) Fail()    { s.mu.Lock(); s.failed = true; s.mu.Unlock() }
func (s *standalone) FailNow() { s.Fatal("FailNow") }
func (s *standalone) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func (s *standalone) Cleanup(f func()) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}

func (s *standalone) TempDir() string {
	dir, err := os.MkdirTemp("", s.name+"-")
	if err != nil {
		s.Fatalf("TempDir: %v", err)
	}
	s.mu.Lock()
	s.dirs = append(s.dirs, dir)
	s.mu.Unlock()
	return dir
}

func (s *standalone) done() bool {
	for {
		s.mu.Lock()
		n := len(s.cleanups)
		if n == 0 {
			s.mu.Unlock()
			break
		}
		f := s.cleanups[n-1]
		s.cleanups = s.cleanups[:n-1]
		s.mu.Unlock()
		f()
	}
	s.mu.Lock()
	dirs := s.dirs
	s.dirs = nil
	s.mu.Unlock()
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	return s.Failed()
}
