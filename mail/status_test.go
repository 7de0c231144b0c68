package mail

import (
	"errors"
	"fmt"
	"testing"
)

func TestStatusParts(t *testing.T) {
	for _, c := range []struct {
		s        string
		ok       bool
		class    int
		subject  int
		perm     Status
		forCode4 Status
	}{
		{"4.2.2", true, 4, 2, "5.2.2", "4.2.2"},
		{"5.1.10", true, 5, 1, "5.1.10", "4.0.0"},
		{"2.0.0", true, 2, 0, "5.0.0", "4.0.0"},
		{"3.1.1", false, 0, 1, "5.0.0", "4.0.0"},
		{"4.2", false, 4, -1, "5.2", "4.2"},
		{"x.y.z", false, 0, -1, "5.0.0", "4.0.0"},
		{"4.1234.1", false, 4, 1234, "5.1234.1", "4.1234.1"},
	} {
		_, ok := ParseStatus(c.s)
		s := Status(c.s)
		if ok != c.ok || s.Class() != c.class || s.Subject() != c.subject || s.Permanent() != c.perm || s.ForCode(451) != c.forCode4 {
			t.Errorf("%q: parse %v class %d subject %d permanent %q forCode(451) %q; want %v %d %d %q %q",
				c.s, ok, s.Class(), s.Subject(), s.Permanent(), s.ForCode(451), c.ok, c.class, c.subject, c.perm, c.forCode4)
		}
	}
	if !StatusMailboxFull.SameCondition(StatusMailboxFullPerm) || StatusMailboxFull.SameCondition(StatusNoSuchUser) {
		t.Error("SameCondition")
	}
	if StatusRefused.Transient() != "4.7.1" || StatusTempAuth.Transient() != StatusTempAuth {
		t.Error("Transient")
	}
}

func TestErrorsSayWhetherTheyAreTemporary(t *testing.T) {
	for _, c := range []struct {
		err  error
		temp bool
	}{
		{nil, false},
		{ErrNotFound, false},
		{fmt.Errorf("account x: %w", ErrNoSuchUser), false},
		{fmt.Errorf("%w: bad", ErrBadAddress), false},
		{fmt.Errorf("partition 3: %w", ErrUnavailable), true},
		{Temporaryf(StatusLocalError, "disk"), true},
		{fmt.Errorf("rule: %w", Permanentf(StatusRefused, "no")), false},
		{errors.New("something nobody classified"), true},
	} {
		if got := IsTemporary(c.err); got != c.temp {
			t.Errorf("IsTemporary(%v) = %v, want %v", c.err, got, c.temp)
		}
	}
	e := &Error{Code: 452, Status: StatusMailboxFull, Reason: "full", Err: ErrUnavailable}
	if r := e.Result(); r.Code != 452 || r.Status != StatusMailboxFull || r.Text != "full" || !errors.Is(e, ErrUnavailable) {
		t.Errorf("Result %+v / Is %v", r, errors.Is(e, ErrUnavailable))
	}
	if r := (&Error{Code: 554, Status: StatusMailboxFull}).Result(); r.Status != StatusPermFailure {
		t.Errorf("a 554 with a 4.x status answers %q, want 5.0.0 (class must match, RFC 3463 §2)", r.Status)
	}
	if AsError(fmt.Errorf("wrapped: %w", e)) != e || AsError(ErrNotFound) != nil {
		t.Error("AsError")
	}
}
