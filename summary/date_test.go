package summary

import (
	netmail "net/mail"
	"testing"
	"time"
)

func sameDate(a, b time.Time) bool {
	_, ao := a.Zone()
	_, bo := b.Zone()
	return a.Equal(b) && ao == bo && a.IsZero() == b.IsZero()
}

// ParseDate's answer, with the zero time for a date it cannot read.
func parseDate(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, err := netmail.ParseDate(v)
	if err != nil {
		return time.Time{}
	}
	return t
}

var dateSeeds = []string{
	"Tue, 1 Dec 2026 10:31:47 +0000",
	"Thu, 03 Dec 2026 09:37:38 -0800",
	"Mon, 02 Jan 2006 15:04:05 -0700 (MST)",
	"2 Jan 2006 15:04:05 +0100",
	"Mon, 2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 06 15:04:05 GMT",
	"Fri, 31 Feb 2026 10:00:00 +0000",
	"Sun, 1 Dec 2026 10:31:47 +0000",
	"Tue,  1 Dec 2026 10:31:47 +0000",
	"not a date",
	"",
}

func TestEnvelopeDateIsParseDates(t *testing.T) {
	for _, v := range dateSeeds {
		if got, want := envelopeDate(v), parseDate(v); !sameDate(got, want) {
			t.Errorf("%q: %v, net/mail %v", v, got, want)
		}
	}
}

func FuzzEnvelopeDate(f *testing.F) {
	for _, v := range dateSeeds {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := envelopeDate(v), parseDate(v); !sameDate(got, want) {
			t.Fatalf("%q: %v, net/mail %v", v, got, want)
		}
	})
}
