package actors

import (
	"fmt"
	"sync"
	"testing"

	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/tlog"
)

// fullJournalStore refuses writes with storage.ErrNoSpace while full is
// set, as the journal's badger store does on a full disk.
type fullJournalStore struct {
	JournalStore
	mu   sync.Mutex
	full bool
}

func (s *fullJournalStore) setFull(full bool) {
	s.mu.Lock()
	s.full = full
	s.mu.Unlock()
}

func (s *fullJournalStore) Append(events []JournalEvent, messages []JournalMessage) <-chan error {
	s.mu.Lock()
	full := s.full
	s.mu.Unlock()
	if full {
		ch := make(chan error, 1)
		ch <- fmt.Errorf("storage: journal write: %w", storage.ErrNoSpace)
		return ch
	}
	return s.JournalStore.Append(events, messages)
}

// A full disk costs the journal one warning, not an error line per batch
// of events; once writes work again it says so once, and keeps events.
func TestJournalOnAFullDiskWarnsOnce(t *testing.T) {
	var lines tlog.Lines
	store := &fullJournalStore{JournalStore: NewMemoryJournal(100, 100), full: true}
	j := NewStoredJournal(store, nil, tlog.New(t, "journal", tlog.KeepIn(&lines)))
	t.Cleanup(j.Close)
	for i := range 5 {
		j.Record(fmt.Sprintf("Q%d", i), "queued", "while full")
		j.Flush()
	}
	if n := lines.Count("the disk is full"); n != 1 {
		t.Errorf("%d full-disk warnings for 5 batches, want 1:\n%s", n, lines.String())
	}
	if n := lines.Count("level=ERROR"); n != 0 {
		t.Errorf("%d error lines, want none:\n%s", n, lines.String())
	}
	store.setFull(false)
	j.Record("Q9", "queued", "room again")
	j.Flush()
	if n := lines.Count("writing again"); n != 1 {
		t.Errorf("%d lines saying it writes again, want 1:\n%s", n, lines.String())
	}
	if ev := j.Events("Q9"); len(ev) != 1 || ev[0].Detail != "room again" {
		t.Errorf("events of Q9 after the disk has room: %+v", ev)
	}
	store.setFull(true)
	j.Record("Q10", "queued", "full again")
	j.Flush()
	if n := lines.Count("the disk is full"); n != 2 {
		t.Errorf("a second full period: %d warnings in all, want 2:\n%s", n, lines.String())
	}
}
