package actors

import (
	"sort"
	"sync"
	"time"
)

// JournalEvent is one step of a message's journey through this node.
type JournalEvent struct {
	Time   time.Time `json:"time"`
	ID     string    `json:"id"`
	Event  string    `json:"event"`  // received, queued, transferred, stored, delivered, relayed, deferred, failed, report, left
	Detail string    `json:"detail"` // for people: recipient, account, member, error
}

// Journal keeps the last events of the messages that passed this node (a
// ring of fixed size), so an operator can follow one message across the
// cluster by its queue id (GET /api/v1/journey/{id} asks every member).
// Safe for concurrent use; memory is bounded.
type Journal struct {
	mu   sync.Mutex
	buf  []JournalEvent
	next int
	full bool
	now  func() time.Time
}

// NewJournal keeps the last n events.
func NewJournal(n int, now func() time.Time) *Journal {
	if now == nil {
		now = time.Now
	}
	return &Journal{buf: make([]JournalEvent, n), now: now}
}

// Record notes an event of message id. A nil Journal records nothing.
func (j *Journal) Record(id, event, detail string) {
	if j == nil || id == "" {
		return
	}
	j.mu.Lock()
	j.buf[j.next] = JournalEvent{Time: j.now(), ID: id, Event: event, Detail: detail}
	j.next++
	if j.next == len(j.buf) {
		j.next, j.full = 0, true
	}
	j.mu.Unlock()
}

// Events returns the recorded events of message id, oldest first. Events
// of messages derived from it (its reports, forwarded copies: ids that
// start with id) are included.
func (j *Journal) Events(id string) []JournalEvent {
	if j == nil || id == "" {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []JournalEvent
	n := j.next
	if j.full {
		n = len(j.buf)
	}
	for i := 0; i < n; i++ {
		e := j.buf[i]
		if len(e.ID) >= len(id) && e.ID[:len(id)] == id {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Time.Before(out[b].Time) })
	return out
}
