package actors

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"net/textproto"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// JournalEvent is one step of a message's journey through this node.
type JournalEvent = storage.JournalEvent

// JournalMessage is a message queued on this node, as a search finds it.
type JournalMessage = storage.JournalMessage

// JournalQuery finds messages in the journal.
type JournalQuery = storage.JournalQuery

// JournalStore keeps a node's journal. *storage.JournalStore keeps it on
// disk, bounded by age (the journey survives a restart); MemoryJournal in
// a bounded ring.
type JournalStore interface {
	// Append writes events and messages; the channel receives nil once
	// they are kept.
	Append(events []JournalEvent, messages []JournalMessage) <-chan error
	// Events are the events of message id and of the messages derived
	// from it (ids that start with id), oldest first.
	Events(id string) ([]JournalEvent, error)
	// Search returns the messages q matches, the newest first.
	Search(q JournalQuery) ([]JournalMessage, error)
}

// Journal records the journey of the messages that pass this node, so an
// operator can follow one across the cluster by its queue id (GET
// /api/v1/journey/{id} asks every member) and find it by sender,
// recipient, Message-ID and time (GET /api/v1/journey?...). Recording
// never waits: events go to the store in batches, written by a goroutine
// that runs while there is something to write (one write in flight, the
// next batch gathering meanwhile). Reads wait for what was recorded
// before them. Memory is bounded: beyond maxPendingJournal unwritten
// events (a store that does not keep up) new ones are dropped and
// counted. Safe for concurrent use; a nil Journal records nothing.
type Journal struct {
	store JournalStore
	now   func() time.Time
	log   *slog.Logger

	mu       sync.Mutex
	idle     *sync.Cond // signalled when a write ends
	events   []JournalEvent
	messages []JournalMessage
	writing  bool
	closed   bool
	dropped  int
	// noSpace is set while the store refuses writes for want of disk
	// space: said once, not for every batch (the free-space guard says
	// the rest), until a write succeeds again. Only write touches it.
	noSpace bool
}

// maxPendingJournal bounds the events and messages waiting to be written.
const maxPendingJournal = 100_000

// NewJournal keeps the last n events (and n/8 messages) in memory: a
// restart forgets them.
func NewJournal(n int, now func() time.Time) *Journal {
	return NewStoredJournal(NewMemoryJournal(n, max(n/8, 1)), now, nil)
}

// NewStoredJournal records into store; log (nil: none) hears of write
// failures.
func NewStoredJournal(store JournalStore, now func() time.Time, log *slog.Logger) *Journal {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	j := &Journal{store: store, now: now, log: log}
	j.idle = sync.NewCond(&j.mu)
	return j
}

// Record notes an event of message id.
func (j *Journal) Record(id, event, detail string) {
	if j == nil || id == "" {
		return
	}
	j.add(&JournalEvent{Time: j.now(), ID: id, Event: event, Detail: detail}, nil)
}

// RecordMessage notes a message queued here, with what a search finds it
// by: its sender, recipients, size and time, and the Message-ID and
// Subject of its header (read from the first 16 KiB of body).
func (j *Journal) RecordMessage(env *mail.Envelope, body mail.Body) {
	if j == nil || env == nil || env.ID == "" {
		return
	}
	m := JournalMessage{ID: env.ID, Time: env.Received, From: env.From, Size: env.Size}
	if m.Time.IsZero() {
		m.Time = j.now()
	}
	for _, r := range env.Recipients {
		m.To = append(m.To, r.Addr)
	}
	if body != nil {
		if head, err := mail.Head(body, 16<<10); err == nil {
			m.MessageID, m.Subject = headerFields(head)
		}
	}
	j.add(nil, &m)
}

func (j *Journal) add(e *JournalEvent, m *JournalMessage) {
	if mem, ok := j.store.(*MemoryJournal); ok {
		// Kept at once: no write to wait for.
		mem.add(e, m)
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed || len(j.events)+len(j.messages) >= maxPendingJournal {
		j.dropped++
		return
	}
	if e != nil {
		j.events = append(j.events, *e)
	}
	if m != nil {
		j.messages = append(j.messages, *m)
	}
	if !j.writing {
		j.writing = true
		go j.write()
	}
}

// write writes what is pending until nothing is.
func (j *Journal) write() {
	j.mu.Lock()
	for len(j.events)+len(j.messages) > 0 {
		evs, ms, dropped := j.events, j.messages, j.dropped
		j.events, j.messages, j.dropped = nil, nil, 0
		j.mu.Unlock()
		if dropped > 0 {
			j.log.Warn("journal: events dropped: the store does not keep up", "dropped", dropped)
		}
		switch err := <-j.store.Append(evs, ms); {
		case err == nil:
			if j.noSpace {
				j.noSpace = false
				j.log.Info("journal: writing again; the events recorded while the disk was full are lost")
			}
		case errors.Is(err, storage.ErrNoSpace):
			if !j.noSpace {
				j.noSpace = true
				j.log.Warn("journal: the disk is full; events are lost until there is room again", "err", err)
			}
		default:
			j.log.Error("journal: writing events failed; they are lost", "events", len(evs), "messages", len(ms), "err", err)
		}
		j.mu.Lock()
	}
	j.writing = false
	j.idle.Broadcast()
	j.mu.Unlock()
}

// Flush waits until everything recorded before it is written.
func (j *Journal) Flush() {
	if j == nil {
		return
	}
	j.mu.Lock()
	for j.writing {
		j.idle.Wait()
	}
	j.mu.Unlock()
}

// Close writes what is pending and records nothing more; the store may
// be closed after it.
func (j *Journal) Close() {
	if j == nil {
		return
	}
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.Flush()
}

// Events returns the recorded events of message id and of the messages
// derived from it (its reports, forwarded copies: ids that start with
// id), oldest first.
func (j *Journal) Events(id string) []JournalEvent {
	evs, _ := j.Find(id)
	return evs
}

// Find is Events with the store's error.
func (j *Journal) Find(id string) ([]JournalEvent, error) {
	if j == nil || id == "" {
		return nil, nil
	}
	j.Flush()
	return j.store.Events(id)
}

// Search returns the messages queued here that q matches, the newest
// first.
func (j *Journal) Search(q JournalQuery) ([]JournalMessage, error) {
	if j == nil {
		return nil, nil
	}
	j.Flush()
	return j.store.Search(q)
}

// headerFields reads the Message-ID and Subject of a message's header
// (head: its first bytes; a header cut short yields what it has).
func headerFields(head []byte) (messageID, subject string) {
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		head = head[:i+4]
	}
	// A buffer the header's size, 4 KiB at most (bufio's default).
	h, _ := textproto.NewReader(bufio.NewReaderSize(bytes.NewReader(head), min(max(len(head), 16), 4096))).ReadMIMEHeader()
	return strings.TrimSpace(h.Get("Message-Id")), strings.TrimSpace(h.Get("Subject"))
}

// MemoryJournal is a JournalStore in memory: the last events and messages
// in rings of fixed size. Safe for concurrent use.
type MemoryJournal struct {
	mu       sync.Mutex
	events   ring[JournalEvent]
	messages ring[JournalMessage]
}

// NewMemoryJournal keeps the last events and the last messages.
func NewMemoryJournal(events, messages int) *MemoryJournal {
	return &MemoryJournal{events: newRing[JournalEvent](events), messages: newRing[JournalMessage](messages)}
}

func (m *MemoryJournal) add(e *JournalEvent, x *JournalMessage) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e != nil {
		m.events.add(*e)
	}
	if x != nil {
		m.messages.add(*x)
	}
}

// Append implements JournalStore.
func (m *MemoryJournal) Append(events []JournalEvent, messages []JournalMessage) <-chan error {
	m.mu.Lock()
	for _, e := range events {
		m.events.add(e)
	}
	for _, x := range messages {
		m.messages.add(x)
	}
	m.mu.Unlock()
	ch := make(chan error, 1)
	ch <- nil
	return ch
}

// Events implements JournalStore.
func (m *MemoryJournal) Events(id string) ([]JournalEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []JournalEvent
	m.events.each(func(e JournalEvent) {
		if strings.HasPrefix(e.ID, id) {
			out = append(out, e)
		}
	})
	sortStable(out, func(a, b JournalEvent) bool { return a.Time.Before(b.Time) })
	return out, nil
}

// Search implements JournalStore.
func (m *MemoryJournal) Search(q JournalQuery) ([]JournalMessage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = storage.DefaultJournalLimit
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []JournalMessage
	m.messages.each(func(x JournalMessage) {
		if q.Matches(x) {
			out = append(out, x)
		}
	})
	sortStable(out, func(a, b JournalMessage) bool { return a.Time.After(b.Time) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ring keeps the last n values added.
type ring[T any] struct {
	buf  []T
	next int
	full bool
}

func newRing[T any](n int) ring[T] { return ring[T]{buf: make([]T, max(n, 1))} }

func (r *ring[T]) add(v T) {
	r.buf[r.next] = v
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// each calls fn on the values, oldest first.
func (r *ring[T]) each(fn func(T)) {
	n, start := r.next, 0
	if r.full {
		n, start = len(r.buf), r.next
	}
	for i := 0; i < n; i++ {
		fn(r.buf[(start+i)%len(r.buf)])
	}
}

// sortStable sorts s by less, keeping equal elements in order.
func sortStable[T any](s []T, less func(a, b T) bool) {
	sort.SliceStable(s, func(i, k int) bool { return less(s[i], s[k]) })
}
