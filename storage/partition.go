package storage

import (
	"context"
	"fmt"
	"sync"

	"github.com/homing-mail/homing/mail"
)

// Partition is one open partition of an AccountStore: the accounts,
// aliases and mailboxes of the addresses that mail.PartitionOf hashes into
// it, in one badger DB.
//
// A Partition is safe for concurrent use. Writes to one account (and
// to one alias) are serialised by a per-address mutex inside: the account
// actor is meant to be the only writer, and this keeps the store consistent
// if it is not. Writers to different accounts run concurrently and share
// syncs through the DB's group commit.
//
// Every method that takes an address refuses (*WrongPartitionError) an
// address that does not hash into this partition. Write methods take a
// context: if it ends while the write is being synced, the method returns
// ctx.Err() and the write may still complete (it stays ordered before every
// later write of the account).
type Partition struct {
	id    int
	n     int
	db    *DB
	blobs *blobDir
	store *AccountStore
	locks keyedMutex
	// models: the model of accounts appended to lately (modelcache.go).
	models modelCache

	// bg tracks goroutines that hold an account lock until a write whose
	// caller gave up (ctx) has been committed.
	bg sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

func openPartition(s *AccountStore, id int) (*Partition, error) {
	db, err := openDB(s.dir(id), s.opt, mailboxProfile)
	if err != nil {
		return nil, fmt.Errorf("storage: partition %d: %w", id, err)
	}
	p := &Partition{id: id, n: s.n, db: db, store: s}
	written := p.models.written
	db.onWritten.Store(&written)
	if p.blobs, err = openBlobDir(s.dir(id), s.opt.normalized()); err == nil {
		var names map[string]bool
		if names, err = heldNames(db, prefixFile); err == nil {
			_, err = p.blobs.removeOrphans(names)
		}
	}
	if err == nil {
		err = p.resumePurges()
	}
	if err == nil {
		err = p.migrate()
	}
	if err != nil {
		_ = p.closeDB()
		return nil, fmt.Errorf("storage: partition %d: %w", id, err)
	}
	return p, nil
}

// ID returns the partition number.
func (p *Partition) ID() int { return p.id }

// DB returns the partition's database, for its Stats and Err.
func (p *Partition) DB() *DB { return p.db }

// Epoch is the fencing token this open of the partition wrote (epoch.go).
func (p *Partition) Epoch() uint64 { return p.db.Epoch() }

// Failed is closed once the partition's DB has failed: a write or sync
// error, or another open took the directory since (a newer epoch). Every
// write fails from then on (ErrFailed, temporary); the owner closes the
// partition and opens it again, which succeeds only once nobody else
// holds it. Err says why.
func (p *Partition) Failed() <-chan struct{} { return p.db.Failed() }

// Err is the DB's sticky failure (nil while it is healthy).
func (p *Partition) Err() error { return p.db.Err() }

// Close commits the writes already submitted, closes the partition's DB
// (releasing its directory lock, so another node may open it) and removes it
// from its store. Close is idempotent.
func (p *Partition) Close() error {
	p.closeOnce.Do(func() {
		p.closeErr = p.closeDB()
		p.store.forget(p.id, p)
		// A closed partition may stay reachable for a while (from the
		// stopped account actors that pointed to it): its cache goes now.
		p.models.drop()
	})
	return p.closeErr
}

func (p *Partition) closeDB() error {
	err := p.db.Close() // resolves every pending write ...
	p.bg.Wait()         // ... so these goroutines end
	return err
}

// account normalises addr and checks that it belongs here.
func (p *Partition) account(addr string) (string, error) {
	a, err := normalizeAddress(addr)
	if err != nil {
		return "", err
	}
	if want := mail.PartitionOf(a, p.n); want != p.id {
		return "", &WrongPartitionError{Address: a, Partition: p.id, Want: want}
	}
	return a, nil
}

// commitLocked commits b and then calls unlock, the release of the account
// lock under which b was built from a read of the store. If ctx ends first
// it returns ctx.Err() at once but keeps the lock until b is committed, so
// the next writer of the account reads a store that includes b.
func (p *Partition) commitLocked(ctx context.Context, b *Batch, unlock func()) error {
	if err := ctx.Err(); err != nil {
		p.db.unannounce(b)
		unlock()
		return err
	}
	ch := p.db.Submit(b)
	select {
	case err := <-ch:
		unlock()
		return err
	case <-ctx.Done():
		p.bg.Add(1)
		go func() {
			defer p.bg.Done()
			<-ch
			unlock()
		}()
		return ctx.Err()
	}
}

// commitWritten submits b and calls unlock as soon as b is applied (reads
// see it), then returns the channel that says when b is durable. If ctx ends
// before b is applied, it returns ctx.Err() and unlocks when b is applied.
func (p *Partition) commitWritten(ctx context.Context, b *Batch, unlock func()) (<-chan error, error) {
	if err := ctx.Err(); err != nil {
		p.db.unannounce(b)
		unlock()
		return nil, err
	}
	written, done := p.db.SubmitWritten(b)
	select {
	case <-written:
		unlock()
		return done, nil
	case <-ctx.Done():
		p.bg.Add(1)
		go func() {
			defer p.bg.Done()
			<-written
			unlock()
		}()
		return nil, ctx.Err()
	}
}

// keyedMutex is a mutex per key, created on demand and dropped when no one
// holds or waits for it.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

// lock locks key and returns its unlock function, which must be called
// exactly once (from any goroutine).
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyedEntry)
	}
	e := k.m[key]
	if e == nil {
		e = new(keyedEntry)
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	var once sync.Once
	return func() {
		once.Do(func() {
			e.mu.Unlock()
			k.mu.Lock()
			e.refs--
			if e.refs == 0 {
				delete(k.m, key)
			}
			k.mu.Unlock()
		})
	}
}
