package admin

import (
	"net/url"
	"testing"
	"time"
)

func TestQueuePage(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var q []QueueEntry
	for i, s := range []string{"deferred", "active", "held", "deferred", "active"} {
		q = append(q, QueueEntry{ID: string(rune('E' - i)), Sender: "s@x.test", State: s, Node: []string{"fe1", "fe2"}[i%2],
			Received: t0.Add(time.Duration(i) * time.Second), Recipients: []QueueRecipient{{Address: "r" + string(rune('0'+i)) + "@example.test"}}})
	}
	ids := func(v string) (string, int) {
		t.Helper()
		vals, _ := url.ParseQuery(v)
		page, total, err := queuePage(q, vals)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		s := ""
		for _, e := range page {
			s += e.ID
		}
		return s, total
	}
	for _, tc := range []struct {
		query string
		want  string
		total int
	}{
		{"", "EDCBA", 5},
		{"limit=2", "ED", 5},
		{"offset=2&limit=2", "CB", 5},
		{"offset=9", "", 5},
		{"state=deferred", "EB", 2},
		{"node=fe2", "DB", 2},
		{"q=R3@EXAMPLE", "B", 1},
		{"q=c", "C", 1},
		{"q=s@x.test&state=active&limit=1", "D", 2},
	} {
		if got, total := ids(tc.query); got != tc.want || total != tc.total {
			t.Errorf("%q: %q of %d, want %q of %d", tc.query, got, total, tc.want, tc.total)
		}
	}
}
