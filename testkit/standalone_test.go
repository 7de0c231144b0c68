package testkit

import (
	"os"
	"strings"
	"testing"
)

func TestStandaloneRunsCleanupsLastFirstAndReportsFailures(t *testing.T) {
	var log strings.Builder
	st, done := Standalone("s", &log)
	var order []int
	st.Cleanup(func() { order = append(order, 1) })
	st.Cleanup(func() { order = append(order, 2) })
	dir := st.TempDir()
	st.Logf("hello %d", 1)
	if done() {
		t.Fatal("a standalone T without failures reported one")
	}
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Fatalf("cleanups ran %v, want last registered first", order)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the temporary directory is still there: %v", err)
	}
	if log.String() != "hello 1\n" {
		t.Fatalf("log %q", log.String())
	}

	st, done = Standalone("s", nil)
	func() {
		defer func() {
			if p := recover(); p == nil || !strings.Contains(p.(string), "boom 7") {
				t.Errorf("Fatalf panicked with %v, want its message", p)
			}
		}()
		st.Fatalf("boom %d", 7)
	}()
	if !done() {
		t.Fatal("done after Fatalf reported no failure")
	}
}
