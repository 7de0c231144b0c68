package imap

import (
	"testing"
	"time"
)

// TestWriteDeadlineAppliedWhenItMatters: the deadline wanted reaches the
// connection at a write when it differs from the one in force by more
// than the slack, or one of them is none; many deadlines set between two
// writes cost one change.
func TestWriteDeadlineAppliedWhenItMatters(t *testing.T) {
	var d writeDeadline
	var applied []time.Time
	set := func(t time.Time) error { applied = append(applied, t); return nil }
	base := time.Unix(1_800_000_000, 0)
	step := func(wanted time.Time, want int) {
		t.Helper()
		d.set(wanted)
		if err := d.apply(set); err != nil {
			t.Fatal(err)
		}
		if len(applied) != want {
			t.Fatalf("wanted %v: %d changes, want %d (%v)", wanted, len(applied), want, applied)
		}
		if !applied[len(applied)-1].Equal(d.inEffect) && want > 0 {
			t.Fatalf("in effect %v, last applied %v", d.inEffect, applied[len(applied)-1])
		}
	}
	d.set(time.Time{})
	if err := d.apply(set); err != nil || len(applied) != 0 {
		t.Fatalf("none wanted, none in effect: %v", applied)
	}
	step(base, 1)
	for i := range 100 { // a FETCH: set, clear, set ... between two writes
		d.set(base.Add(time.Duration(i) * time.Millisecond))
		d.set(time.Time{})
	}
	step(base.Add(200*time.Millisecond), 1) // within the slack
	step(base.Add(2*time.Second), 2)
	step(base.Add(1500*time.Millisecond), 2) // earlier, within the slack
	step(time.Time{}, 3)                     // none: cleared, never left to expire
	step(base.Add(5*time.Minute), 4)
}
