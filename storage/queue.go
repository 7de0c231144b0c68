package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/homing-mail/homing/mail"
)

// QueueStore is the node-local durable message queue: for each queued
// message its envelope (encoding/json) and its body (framed with its
// length and CRC-32C, frame.go), apart, so that recovery and listing read
// envelopes only.
//
// It is safe for concurrent use. Writes are ordered as DB.Submit orders
// them. The queue actor that owns a message is expected to be its only
// writer; in particular an Update submitted after the Delete of the same id
// would write the envelope back without its body.
type QueueStore struct {
	db    *DB
	blobs *blobDir
	space *Space
	// transferMu serialises PutTransfer's check-then-write.
	transferMu sync.Mutex
}

// OpenQueue opens the queue in dir (created if needed). Bodies in memory
// (mail.BytesBody) are stored in badger: up to 1 KiB in its LSM tree,
// larger ones in its value log (see options.go for why); bodies written
// through NewBody beyond the inline threshold are files of dir/bodies
// (blob.go), which the queue references. Files no record holds (a crash
// before the record was written or after it was deleted) are removed
// here. It fails with an error wrapping ErrLocked if dir is open
// elsewhere.
func OpenQueue(dir string, opt Options) (*QueueStore, error) {
	opt = opt.normalized()
	db, err := openDB(dir, opt, queueProfile)
	if err != nil {
		return nil, err
	}
	q := &QueueStore{db: db, space: opt.Space}
	if q.blobs, err = openBlobDir(dir, opt); err == nil {
		var names map[string]bool
		if names, err = heldNames(db, prefixFile); err == nil {
			_, err = q.blobs.removeOrphans(names)
		}
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	return q, nil
}

// NewBody returns a writer for the body of a message about to be queued
// (an SMTP session's DATA): it keeps the body in memory up to the inline
// threshold and writes a file of the queue beyond it (blob.go). Put of
// the message takes the file over; a body that is not Put must be given
// to DiscardBody (or its writer aborted), or it stays until the queue is
// opened again.
func (q *QueueStore) NewBody() (mail.BodyWriter, error) { return q.blobs.newWriter(), nil }

// DB returns the underlying database, for its Stats and Err.
func (q *QueueStore) DB() *DB { return q.db }

// Admit says whether a new message of size bytes (0: not known yet) may
// be accepted now: nil, or an error wrapping ErrNoSpace while the
// queue's filesystem is below its free-space limit (space.go). SMTP asks
// at MAIL FROM and DATA.
func (q *QueueStore) Admit(size int64) error { return q.space.Admit(size) }

// CanRecord reports whether the queue can write the result of an attempt
// now (nil), or its filesystem is so full that not even that would be
// written (an error wrapping ErrNoSpace): the queue then waits before it
// starts attempts, so that no relay's outcome goes unrecorded.
func (q *QueueStore) CanRecord() error { return q.space.canRecord() }

// Put stores a new message, envelope and body in one batch, and returns nil
// only once both are synced to disk: the caller may then answer 250 to DATA
// (RFC 5321 §6.1). The envelope's ID must be set by the caller. If ctx ends
// first, Put returns ctx.Err() and the message may still be stored.
//
// A body in memory is stored in badger, framed. A body in a file
// (*FileBody, under a prefix or not) is referenced: a file of this queue
// that no record holds yet is taken over, one this message already holds
// is kept, and any other is hard-linked into the queue (copied when it is
// on another filesystem); the prefix is stored in the reference.
func (q *QueueStore) Put(ctx context.Context, msg *mail.Message) error {
	b, err := q.messageBatch(msg)
	if err != nil {
		return err
	}
	return q.db.Commit(ctx, b)
}

// TransferRetention is how long a queue remembers the id of a message
// handed over by another member, so that a transfer repeated after an
// unclear reply is recognised.
const TransferRetention = 7 * 24 * time.Hour

// PutTransfer stores a message handed over by another cluster member, like
// Put, unless a message with its id was stored by PutTransfer within
// TransferRetention: then it stores nothing and returns duplicate=true.
// Calls for one id must not run concurrently (the caller serialises them;
// a session holds one transfer at a time and ids are unique per sender).
func (q *QueueStore) PutTransfer(ctx context.Context, msg *mail.Message) (duplicate bool, err error) {
	env := msg.Envelope
	if env == nil {
		return false, errNilEnvelope
	}
	if err := checkID(env.ID); err != nil {
		return false, err
	}
	q.transferMu.Lock()
	defer q.transferMu.Unlock()
	if _, err := q.db.Get(key(prefixTransfer, env.ID)); err == nil {
		return true, nil
	} else if !errors.Is(err, mail.ErrNotFound) {
		return false, err
	}
	b, err := q.messageBatch(msg)
	if err != nil {
		return false, err
	}
	b.setTTL(key(prefixTransfer, env.ID), []byte{1}, TransferRetention)
	return false, q.db.Commit(ctx, b)
}

// Update rewrites the envelope of a queued message (recipient states,
// attempts, held flag) and leaves the body alone. It does not wait: the
// channel (buffer 1) receives nil once the envelope is durable. Updates
// submitted earlier take effect earlier.
func (q *QueueStore) Update(env *mail.Envelope) <-chan error {
	b, err := envelopeBatch(env)
	if err != nil {
		ch := make(chan error, 1)
		ch <- err
		return ch
	}
	b.maintenance = true // the results of attempts: what lets the queue drain
	b.background = true  // nobody waits for it
	return q.db.Submit(b)
}

// Delete removes the envelope and the body of a message; deleting a missing
// message is not an error. The channel (buffer 1) receives nil once the
// deletion is durable. A body file is unlinked after that (a crash in
// between leaves an orphan, removed at the next open).
func (q *QueueStore) Delete(id string) <-chan error {
	if err := checkID(id); err != nil {
		ch := make(chan error, 1)
		ch <- err
		return ch
	}
	name := ""
	if v, err := q.db.Get(key(prefixFile, id)); err == nil {
		name = string(v)
	}
	var b Batch
	b.maintenance = true
	b.background = true // nobody waits for it
	b.Delete(key(prefixEnvelope, id))
	b.Delete(key(prefixBody, id))
	if name == "" {
		return q.db.Submit(&b)
	}
	b.Delete(key(prefixFile, id))
	ch := q.db.Submit(&b)
	out := make(chan error, 1)
	go func() {
		err := <-ch
		if err == nil {
			q.blobs.remove(name)
		}
		out <- err
	}()
	return out
}

// Envelope returns the stored envelope of id, or an error wrapping
// mail.ErrNotFound. The result is the caller's to change.
func (q *QueueStore) Envelope(id string) (*mail.Envelope, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	v, err := q.db.Get(key(prefixEnvelope, id))
	if err != nil {
		return nil, queueErr(id, err)
	}
	return decodeEnvelope(id, v)
}

// Body returns the stored body of id, checked (frame.go): an error
// wrapping mail.ErrNotFound when there is none, ErrDamaged when its bytes
// do not match their length and checksum (or, for a body stored before
// frames, the envelope's Size), never an empty or damaged body. A body in
// a file (blob.go) is checked here for being there with its length; its
// reader checks its bytes as it reads them, and fails at the end when
// they are damaged.
func (q *QueueStore) Body(id string) (mail.Body, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	v, size, err := q.rawBody(id)
	if err != nil {
		return nil, err
	}
	if isRef(v) {
		ref, err := decodeRef(v)
		if err == nil {
			body := q.blobs.body(ref, id)
			_, fb := fileBodyOf(body)
			if err = fb.check(); err == nil {
				return body, nil
			}
		}
		return nil, fmt.Errorf("storage: body of queue message %s: %w", id, err)
	}
	body, err := unframe(v, size)
	if err != nil {
		return nil, fmt.Errorf("storage: body of queue message %s: %w", id, err)
	}
	return mail.BytesBody(body), nil
}

// rawBody reads the stored value of id's body and, when it is not framed,
// the size its envelope records (-1 when there is none to compare with),
// in one snapshot.
func (q *QueueStore) rawBody(id string) (v []byte, size int64, err error) {
	size = -1
	err = q.db.view(func(txn *badger.Txn) error {
		item, err := txn.Get(key(prefixBody, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("storage: queue message %s: %w", id, mail.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if v, err = item.ValueCopy(nil); err != nil || framed(v) {
			return err
		}
		if item, err := txn.Get(key(prefixEnvelope, id)); err == nil {
			_ = item.Value(func(ev []byte) error {
				var env struct {
					Size int64 `json:"size"`
				}
				if json.Unmarshal(ev, &env) == nil && env.Size > 0 {
					size = env.Size
				}
				return nil
			})
		}
		return nil
	})
	return v, size, err
}

// Each calls fn with every stored envelope in id order (mail.NewID ids sort
// by arrival), for recovery after a restart and for listing. It reads one
// consistent snapshot. An envelope that does not decode (ErrDamaged) does
// not stop the walk: fn gets an envelope with only its ID and Damaged (the
// reason) set, so that the message is listed, held and can be deleted. An
// error from fn stops the walk and is returned.
func (q *QueueStore) Each(fn func(*mail.Envelope) error) error {
	return q.db.Scan(prefixEnvelope, func(k, v []byte) error {
		id := string(k[len(prefixEnvelope):])
		env, err := decodeEnvelope(id, v)
		if err != nil {
			env = &mail.Envelope{ID: id, Damaged: err.Error()}
		}
		return fn(env)
	})
}

// Close closes the queue's DB; see DB.Close.
func (q *QueueStore) Close() error { return q.db.Close() }

var errNilEnvelope = mail.PermanentError("storage: nil envelope")

// messageBatch is the batch that stores msg's envelope and body: the body
// framed, or a reference to its file and the file's index record.
func (q *QueueStore) messageBatch(msg *mail.Message) (*Batch, error) {
	if msg == nil || msg.Body == nil {
		return nil, fmt.Errorf("%w: a message without a body", ErrInvalidMessage)
	}
	b, err := envelopeBatch(msg.Envelope)
	if err != nil {
		return nil, err
	}
	id := msg.Envelope.ID
	if prefix, fb := fileBodyOf(msg.Body); fb != nil {
		name, err := q.blobs.hold(fb, id)
		if err != nil {
			return nil, fmt.Errorf("storage: the body of %s: %w", id, err)
		}
		b.Set(key(prefixBody, id), blobRef{name: name, size: fb.size, crc: fb.crc, prefix: prefix}.encode())
		b.Set(key(prefixFile, id), []byte(name))
		return b, nil
	}
	v, err := frameBody(msg.Body)
	if err != nil {
		return nil, fmt.Errorf("storage: reading the body of %s: %w", msg.Envelope.ID, err)
	}
	b.Set(key(prefixBody, msg.Envelope.ID), v)
	return b, nil
}

func envelopeBatch(env *mail.Envelope) (*Batch, error) {
	if env == nil {
		return nil, errNilEnvelope
	}
	if err := checkID(env.ID); err != nil {
		return nil, err
	}
	v, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("storage: encode envelope %s: %w", env.ID, err)
	}
	b := new(Batch)
	b.Set(key(prefixEnvelope, env.ID), v)
	return b, nil
}

func decodeEnvelope(id string, v []byte) (*mail.Envelope, error) {
	env := new(mail.Envelope)
	if len(v) == 0 {
		return nil, fmt.Errorf("storage: envelope of queue message %s: %w", id,
			damaged("empty value (badger returns one when a value-log read fails)"))
	}
	if err := json.Unmarshal(v, env); err != nil {
		return nil, fmt.Errorf("storage: envelope of queue message %s: %w: %v", id, ErrDamaged, err)
	}
	return env, nil
}

func queueErr(id string, err error) error {
	if errors.Is(err, mail.ErrNotFound) {
		return fmt.Errorf("storage: queue message %s: %w", id, mail.ErrNotFound)
	}
	return err
}
