package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The journal of one node: the steps of every message that passed it
// (queued, delivered, relayed, deferred, stored, transferred, left...)
// and, for each message queued here, what it can be found by (sender,
// recipients, Message-ID, time). Every record expires after the store's
// retention (badger's TTL, removed by compaction), so the journal is
// bounded by age. The journal is for people following a message; its
// writes are synced like every other (it shares the node's sync rounds),
// but a node writes it in batches a little after the events: a crash can
// lose the last fraction of a second of it, never mail.
//
//	e/<id>\x00<time><seq>     an event of message id (JSON JournalEvent)
//	m/<time><id>              a message queued here (JSON JournalMessage)
//	f/<sender>\x00<time><id>  index: the m/ key of a message by sender
//	t/<rcpt>\x00<time><id>    index: by recipient
//	i/<message-id>\x00<id>    index: by Message-ID
//
// <time> is the Unix time in nanoseconds, 8 bytes big-endian, so keys of
// one prefix are in time order; <seq> (4 bytes) tells apart events of one
// nanosecond.

var (
	prefixJournalEvent   = []byte("e/")
	prefixJournalMessage = []byte("m/")
	prefixJournalFrom    = []byte("f/")
	prefixJournalTo      = []byte("t/")
	prefixJournalMsgID   = []byte("i/")
)

// DefaultJournalRetention is how long the journal keeps a record when
// OpenJournal is given 0.
const DefaultJournalRetention = 7 * 24 * time.Hour

// JournalEvent is one step of a message on this node.
type JournalEvent struct {
	Time   time.Time `json:"time"`
	ID     string    `json:"id"`
	Event  string    `json:"event"`  // queued, transferred, stored, delivered, relayed, deferred, failed, report, left...
	Detail string    `json:"detail"` // for people: recipient, account, member, error
}

// JournalMessage is a message queued on this node, as a search finds it.
type JournalMessage struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	From      string    `json:"from"`
	To        []string  `json:"to"`
	MessageID string    `json:"messageId,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Size      int64     `json:"size"`
}

// JournalQuery finds messages: every field set must match (From and To
// exactly, without regard to case; a value without a local part, "@d" or
// "d", matches every address of domain d), between Since and Until (zero:
// unbounded). At most Limit are returned, the newest first (0:
// DefaultJournalLimit).
type JournalQuery struct {
	MessageID, From, To string
	Since, Until        time.Time
	Limit               int
}

// Limits of a journal search.
const (
	DefaultJournalLimit = 100
	MaxJournalLimit     = 1000
	// maxJournalScan bounds the records one search reads.
	maxJournalScan = 200_000
)

// JournalStore is a node's journal in its own badger database.
type JournalStore struct {
	db        *DB
	retention time.Duration
	seq       atomic.Uint32
}

// OpenJournal opens the journal in dir; its records expire after
// retention (0: DefaultJournalRetention).
func OpenJournal(dir string, opt Options, retention time.Duration) (*JournalStore, error) {
	if retention <= 0 {
		retention = DefaultJournalRetention
	}
	db, err := openDB(dir, opt, genericProfile)
	if err != nil {
		return nil, err
	}
	return &JournalStore{db: db, retention: retention}, nil
}

// Close closes the database.
func (j *JournalStore) Close() error { return j.db.Close() }

// Retention is how long records are kept.
func (j *JournalStore) Retention() time.Duration { return j.retention }

func timeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(max(t.UnixNano(), 0)))
}

func concat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

// Append writes events and messages in one batch; the channel (buffer 1)
// receives nil once they are durable. Events with an empty ID and
// messages with an empty ID are skipped.
func (j *JournalStore) Append(events []JournalEvent, messages []JournalMessage) <-chan error {
	var b Batch
	for _, e := range events {
		if e.ID == "" || strings.ContainsRune(e.ID, 0) {
			continue
		}
		v, err := json.Marshal(e)
		if err != nil {
			return failed(err)
		}
		seq := binary.BigEndian.AppendUint32(nil, j.seq.Add(1))
		b.setTTL(concat(prefixJournalEvent, []byte(e.ID), []byte{0}, timeKey(e.Time), seq), v, j.retention)
	}
	for _, m := range messages {
		if m.ID == "" || strings.ContainsRune(m.ID, 0) {
			continue
		}
		v, err := json.Marshal(m)
		if err != nil {
			return failed(err)
		}
		mk := concat(prefixJournalMessage, timeKey(m.Time), []byte(m.ID))
		b.setTTL(mk, v, j.retention)
		tk := concat(timeKey(m.Time), []byte(m.ID))
		if from := journalAddress(m.From); from != "" {
			b.setTTL(concat(prefixJournalFrom, []byte(from), []byte{0}, tk), mk, j.retention)
		}
		for _, to := range m.To {
			if to = journalAddress(to); to != "" {
				b.setTTL(concat(prefixJournalTo, []byte(to), []byte{0}, tk), mk, j.retention)
			}
		}
		if mid := NormalizeMessageID(m.MessageID); mid != "" {
			b.setTTL(concat(prefixJournalMsgID, []byte(mid), []byte{0}, []byte(m.ID)), mk, j.retention)
		}
	}
	if b.Len() == 0 {
		return failed(nil)
	}
	b.background = true // a record of what happened: nobody waits for it
	return j.db.Submit(&b)
}

// journalAddress is an address as the indexes keep it: lower-case,
// without NULs, at most 320 bytes (RFC 5321's limits); "" for none.
func journalAddress(a string) string {
	a = strings.ToLower(strings.TrimSpace(a))
	if a == "" || len(a) > 320 || strings.ContainsRune(a, 0) {
		return ""
	}
	return a
}

// NormalizeMessageID is a Message-ID as the index keeps it and a search
// compares it: without blanks and angle brackets, at most 998 bytes.
func NormalizeMessageID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if id == "" || len(id) > 998 || strings.ContainsAny(id, "\x00 \t\r\n") {
		return ""
	}
	return id
}

// Events returns the events of message id and of the messages derived
// from it (its reports and copies, whose ids start with id), oldest
// first.
func (j *JournalStore) Events(id string) ([]JournalEvent, error) {
	if id == "" || strings.ContainsRune(id, 0) {
		return nil, nil
	}
	var out []JournalEvent
	err := j.db.Scan(concat(prefixJournalEvent, []byte(id)), func(_, v []byte) error {
		var e JournalEvent
		if err := json.Unmarshal(v, &e); err != nil {
			return damaged("journal event: %v", err)
		}
		out = append(out, e)
		return nil
	})
	sortEvents(out)
	return out, err
}

func sortEvents(es []JournalEvent) {
	// Insertion sort: the scan returns each id's events in time order
	// already; only derived ids interleave.
	for i := 1; i < len(es); i++ {
		for k := i; k > 0 && es[k].Time.Before(es[k-1].Time); k-- {
			es[k], es[k-1] = es[k-1], es[k]
		}
	}
}

// Search returns the messages q matches, the newest first.
func (j *JournalStore) Search(q JournalQuery) ([]JournalMessage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultJournalLimit
	}
	limit = min(limit, MaxJournalLimit)
	from, to := journalAddress(q.From), journalAddress(q.To)
	mid := NormalizeMessageID(q.MessageID)
	if q.MessageID != "" && mid == "" {
		return nil, nil
	}
	var out []JournalMessage
	match := q.Matches
	// Read by the most selective index: Message-ID, then an exact sender,
	// then an exact recipient; otherwise every message in the time range.
	var prefix []byte
	indexed := true
	switch {
	case mid != "":
		prefix = concat(prefixJournalMsgID, []byte(mid), []byte{0})
	case from != "" && strings.Index(from, "@") > 0:
		prefix = concat(prefixJournalFrom, []byte(from), []byte{0})
	case to != "" && strings.Index(to, "@") > 0:
		prefix = concat(prefixJournalTo, []byte(to), []byte{0})
	default:
		prefix, indexed = prefixJournalMessage, false
	}
	timed := mid == "" // the Message-ID index has no time in its keys
	err := j.db.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: false})
		defer it.Close()
		upper := append(append([]byte(nil), prefix...), 0xff)
		if timed && !q.Until.IsZero() {
			upper = concat(prefix, timeKey(q.Until.Add(time.Nanosecond)))
		}
		var lower []byte
		if timed && !q.Since.IsZero() {
			lower = concat(prefix, timeKey(q.Since))
		}
		scanned := 0
		for it.Seek(upper); it.ValidForPrefix(prefix) && len(out) < limit && scanned < maxJournalScan; it.Next() {
			scanned++
			item := it.Item()
			if lower != nil && bytes.Compare(item.Key(), lower) < 0 {
				break
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if indexed {
				// The index's value is the message's m/ key.
				mv, err := txn.Get(v)
				if err == badger.ErrKeyNotFound {
					continue
				}
				if err != nil {
					return err
				}
				if v, err = mv.ValueCopy(nil); err != nil {
					return err
				}
			}
			var m JournalMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return damaged("journal message: %v", err)
			}
			if match(m) {
				out = append(out, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: journal search: %w", err)
	}
	if !timed {
		// The Message-ID index is in id order: newest first by time.
		for i := 1; i < len(out); i++ {
			for k := i; k > 0 && out[k].Time.After(out[k-1].Time); k-- {
				out[k], out[k-1] = out[k-1], out[k]
			}
		}
	}
	return out, nil
}

// Matches reports whether m is one of the messages q asks for.
func (q JournalQuery) Matches(m JournalMessage) bool {
	from, to := journalAddress(q.From), journalAddress(q.To)
	mid := NormalizeMessageID(q.MessageID)
	switch {
	case q.MessageID != "" && (mid == "" || NormalizeMessageID(m.MessageID) != mid):
		return false
	case !q.Since.IsZero() && m.Time.Before(q.Since), !q.Until.IsZero() && m.Time.After(q.Until):
		return false
	case from != "" && !addressMatches(m.From, from):
		return false
	case to != "":
		for _, r := range m.To {
			if addressMatches(r, to) {
				return true
			}
		}
		return false
	}
	return true
}

// addressMatches reports whether addr is want, or in its domain when want
// has no local part ("@example.test" or "example.test").
func addressMatches(addr, want string) bool {
	addr = strings.ToLower(addr)
	if i := strings.Index(want, "@"); i > 0 {
		return addr == want
	}
	return strings.HasSuffix(addr, "@"+strings.TrimPrefix(want, "@"))
}
