package failtb

import "testing"

func TestRecorderKeepsFailuresAndFatalEndsOnlyTheHelper(t *testing.T) {
	r := New(t)
	msgs, returned := r.Run(func() {
		r.Errorf("first %d", 1)
		r.Fatalf("second %d", 2)
		r.Errorf("never")
	})
	if returned || len(msgs) != 2 || msgs[0] != "first 1" || msgs[1] != "second 2" {
		t.Fatalf("Run = %q, returned %v; want the two failures before Fatalf and no return", msgs, returned)
	}
	if msgs, returned := r.Run(func() {}); !returned || len(msgs) != 0 {
		t.Fatalf("a quiet helper: %q, returned %v", msgs, returned)
	}
}
