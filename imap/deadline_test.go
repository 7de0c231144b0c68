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
		if !wanted.IsZero() && want > 0 && applied[len(applied)-1].Sub(wanted) < outputGrace-deadlineSlack {
			t.Fatalf("wanted %v: applied %v, want at least %v later (a slow client is not cut off)", wanted, applied[len(applied)-1], outputGrace)
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

// A client that reads slowly keeps its session: imapserver asks for 30 s
// per response line, the connection gets 5 minutes (Dovecot's
// CLIENT_OUTPUT_TIMEOUT_MSECS) before a write that makes no progress ends
// it.
func TestSlowClientGetsFiveMinutesPerWrite(t *testing.T) {
	var d writeDeadline
	var got time.Time
	now := time.Now()
	d.set(now.Add(30 * time.Second)) // imapserver's respWriteTimeout
	if err := d.apply(func(t time.Time) error { got = t; return nil }); err != nil {
		t.Fatal(err)
	}
	if w := got.Sub(now); w != 5*time.Minute {
		t.Errorf("write deadline %v after the line began, want 5m", w)
	}
}
