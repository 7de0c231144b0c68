package storage

import (
	"fmt"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/wait"
)

var journalT0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func openTestJournal(t *testing.T, dir string, retention time.Duration) *JournalStore {
	t.Helper()
	j, err := OpenJournal(dir, Options{}, retention)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// Events of a message and of the ones derived from it come back in time
// order, also after the journal is closed and opened again.
func TestJournalEventsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir, 0)
	evs := []JournalEvent{
		{Time: journalT0, ID: "Q1", Event: "queued", Detail: "from a"},
		{Time: journalT0.Add(2 * time.Second), ID: "Q1F", Event: "queued", Detail: "the report"},
		{Time: journalT0.Add(time.Second), ID: "Q1", Event: "failed", Detail: "b: 550"},
		{Time: journalT0.Add(time.Second), ID: "Q2", Event: "queued", Detail: "another"},
	}
	if err := <-j.Append(evs, nil); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openTestJournal(t, dir, 0)
	defer j.Close()
	got, err := j.Events("Q1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Event != "queued" || got[1].Event != "failed" || got[2].ID != "Q1F" {
		t.Fatalf("events of Q1 = %+v, want queued, failed, then Q1F's", got)
	}
	if got, _ := j.Events("Q3"); len(got) != 0 {
		t.Fatalf("events of an unknown id: %+v", got)
	}
}

// A search finds messages by Message-ID, sender, recipient, domain and
// time, the newest first, at most the limit.
func TestJournalSearch(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), 0)
	defer j.Close()
	var ms []JournalMessage
	for i := 0; i < 10; i++ {
		ms = append(ms, JournalMessage{ID: fmt.Sprintf("Q%02d", i), Time: journalT0.Add(time.Duration(i) * time.Minute),
			From: fmt.Sprintf("s%d@example.net", i%2), To: []string{fmt.Sprintf("R%d@Example.test", i%3), "all@example.test"},
			MessageID: fmt.Sprintf("<m%d@example.net>", i), Subject: "s", Size: 100})
	}
	if err := <-j.Append(nil, ms); err != nil {
		t.Fatal(err)
	}
	ids := func(q JournalQuery) string {
		t.Helper()
		got, err := j.Search(q)
		if err != nil {
			t.Fatal(err)
		}
		s := ""
		for _, m := range got {
			s += m.ID + " "
		}
		return s
	}
	for _, tc := range []struct {
		name string
		q    JournalQuery
		want string
	}{
		{"message-id with brackets", JournalQuery{MessageID: "<m7@example.net>"}, "Q07 "},
		{"message-id bare", JournalQuery{MessageID: "m3@example.net"}, "Q03 "},
		{"sender", JournalQuery{From: "S1@example.net"}, "Q09 Q07 Q05 Q03 Q01 "},
		{"recipient", JournalQuery{To: "r2@example.test"}, "Q08 Q05 Q02 "},
		{"sender and recipient", JournalQuery{From: "s0@example.net", To: "r0@example.test"}, "Q06 Q00 "},
		{"recipient domain", JournalQuery{To: "@example.test", Limit: 3}, "Q09 Q08 Q07 "},
		{"since", JournalQuery{Since: journalT0.Add(7 * time.Minute)}, "Q09 Q08 Q07 "},
		{"since and until", JournalQuery{Since: journalT0.Add(2 * time.Minute), Until: journalT0.Add(4 * time.Minute)}, "Q04 Q03 Q02 "},
		{"sender since", JournalQuery{From: "s0@example.net", Since: journalT0.Add(5 * time.Minute)}, "Q08 Q06 "},
		{"limit", JournalQuery{Limit: 2}, "Q09 Q08 "},
		{"no match", JournalQuery{From: "nobody@example.net"}, ""},
	} {
		if got := ids(tc.q); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Records expire after the retention.
func TestJournalRecordsExpire(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), time.Second)
	defer j.Close()
	now := time.Now()
	if err := <-j.Append([]JournalEvent{{Time: now, ID: "Q1", Event: "queued"}},
		[]JournalMessage{{ID: "Q1", Time: now, From: "a@example.net"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := j.Events("Q1"); len(got) != 1 {
		t.Fatalf("events right after the append: %+v", got)
	}
	// badger's expiry has a resolution of a second.
	wait.For(t, 5*time.Second, func() bool {
		evs, _ := j.Events("Q1")
		ms, _ := j.Search(JournalQuery{From: "a@example.net"})
		return len(evs) == 0 && len(ms) == 0
	}, "the records to expire after a retention of 1s")
}
