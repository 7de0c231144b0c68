package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Group commit.
//
// A 250 reply to DATA may only be sent once the message and its envelope
// are on disk (RFC 5321 §6.1), so every acknowledged write must be synced.
// What badger v4.9.6 offers, read in its sources:
//
//   - DefaultOptions has SyncWrites=false: a write is acknowledged from
//     memory.
//   - db.Sync() syncs only the active memtable's WAL (db.go, DB.Sync). If the
//     memtable rotated between a write and the Sync (ensureRoomForWrite), the
//     write sits in an immutable memtable whose WAL nobody syncs. So
//     "SyncWrites=false plus a periodic or per-request db.Sync()" can
//     acknowledge writes that a crash loses.
//   - With SyncWrites=true, writeToLSM syncs the WAL once per request (one
//     transaction), and the value log is synced once per write call
//     (valueLog.write, logFile.doneWriting). One transaction is one sync,
//     covering everything in it.
//
// So the batching has to happen above badger: ONE committer goroutine per DB takes every batch that is waiting when
// it becomes free, writes them all as ONE badger transaction (one sync for
// all of them), then tells each caller. While that sync runs, new batches
// queue up and form the next group; under load the merge factor grows by
// itself and no timer adds latency when the load is light. Batches are
// taken in Submit order, and later writes to a key in one transaction
// override earlier ones, so the order of Submit calls is the order in which
// writes take effect, merged or not. The transaction is made durable either
// by badger itself (SyncWrites=true, one sync per merged transaction) or,
// with a Syncer, by the next syncfs(2) round shared by every DB of the
// filesystem (SyncWrites=false; see syncer.go).
//
// A group is bounded by Options.MaxBatchBytes and by badger's own limits on
// a transaction; a batch that cannot fit in a transaction even alone is
// refused by Submit (ErrBatchTooBig) rather than failing the group it would
// join.
//
// After a commit fails, the DB fails every later write (ErrFailed): a failed
// fsync may have dropped dirty pages that a later, successful fsync would
// not write again, so the only safe state is "reopen and recover". The
// same holds once the directory's epoch is newer than this open's (the
// fencing token, epoch.go): it is checked before a round's transaction is
// written and again once it is durable, before a caller is told.

// pending is one submitted batch waiting for the committer.
type pending struct {
	b          *Batch
	est, count int64 // badger's size estimate and entry count
	done       chan error
	written    chan struct{} // SubmitWritten: closed once applied (or failed)
}

// urgent reports whether someone waits for a batch of group.
func urgent(group []*pending) bool {
	for _, p := range group {
		if !p.b.background {
			return true
		}
	}
	return false
}

// markWritten closes the written channels of group (once).
func markWritten(group []*pending) {
	for _, p := range group {
		if p.written != nil {
			close(p.written)
			p.written = nil
		}
	}
}

// Submit queues b for the committer and returns at once, without waiting
// for I/O. The queue is not bounded: callers bound their own concurrency
// (sessions, actors) and so the number of batches they have in flight. The returned channel (buffer 1) receives nil once every write of
// b is synced to disk, or the error that prevented it; it receives exactly
// one value.
//
// Ordering: batches submitted earlier (by any goroutine, in the order the
// Submit calls happened) commit no later than later ones, so a later write
// to a key wins. An empty batch writes nothing and completes once every
// batch submitted before it is durable (a barrier).
//
// Submit fails at once (on the channel) with ErrClosed after Close,
// ErrFailed after a failed commit, ErrInvalidKey, ErrValueTooBig, or
// ErrBatchTooBig when b alone exceeds badger's transaction limits (15% of
// the memtable size, counting values below the store's value threshold in
// full and others as 14 bytes).
func (db *DB) Submit(b *Batch) <-chan error {
	_, done := db.submit(b, false)
	return done
}

// SubmitWritten is Submit that also reports, on written (closed once), when
// b has been applied to the database: later reads see it, and with a shared
// Syncer it is not durable yet (done says when it is). A caller can then
// let the next writer of the same records go ahead while b is being synced;
// a failed sync fails every later write too, so nothing can become durable
// on top of a lost write.
func (db *DB) SubmitWritten(b *Batch) (written <-chan struct{}, done <-chan error) {
	return db.submit(b, true)
}

func (db *DB) submit(b *Batch, withWritten bool) (<-chan struct{}, <-chan error) {
	var written chan struct{}
	if withWritten {
		written = make(chan struct{})
	}
	ch := make(chan error, 1)
	fail := func(err error) (<-chan struct{}, <-chan error) {
		db.unannounce(b)
		if written != nil {
			close(written)
		}
		ch <- err
		return written, ch
	}
	if b == nil {
		return fail(errors.New("storage: nil batch"))
	}
	if err := b.validate(); err != nil {
		return fail(err)
	}
	if !b.announced {
		// A round about to start waits for every queued batch
		// (Syncer.Writing): one announcement per pending batch, made
		// before it is queued and ended by commitGroup (or by fail).
		b.announced = db.announce()
	}
	est, count := b.size(db.prof.valueThreshold)
	if est >= db.maxTxnSize || count >= db.maxTxnCount {
		return fail(fmt.Errorf("%w: %d writes, ~%d bytes (limit %d writes, %d bytes)",
			ErrBatchTooBig, count, est, db.maxTxnCount, db.maxTxnSize))
	}
	db.mu.Lock()
	switch {
	case db.closing:
		db.mu.Unlock()
		return fail(ErrClosed)
	case db.failed != nil:
		err := db.failed
		db.mu.Unlock()
		return fail(err)
	}
	db.queue = append(db.queue, &pending{b: b, est: est, count: count, done: ch, written: written})
	db.mu.Unlock()
	b.announced = false // the pending batch holds the announcement now
	db.stats.batches.Add(1)
	db.signal()
	return written, ch
}

// announce tells the DB's Syncer, if any, that a batch is being prepared
// and will be submitted soon (Syncer.Writing): a round about to start
// waits for it. The caller sets the batch's announced field (Submit takes
// it over) or calls unannounce. It reports whether there was a Syncer.
func (db *DB) announce() bool {
	if db.opt.Syncer == nil {
		return false
	}
	db.opt.Syncer.Writing(1)
	return true
}

// unannounce ends the announcement b carries, if any (b will not be
// submitted, or its submission failed).
func (db *DB) unannounce(b *Batch) {
	if b != nil && b.announced {
		b.announced = false
		if db.opt.Syncer != nil {
			db.opt.Syncer.NotWritten(1)
		}
	}
}

// Commit submits b and waits until it is durable. If ctx ends first, Commit
// returns ctx.Err() and b may still be committed later.
func (db *DB) Commit(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ch := db.Submit(b)
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// signal wakes the committer; the token waits in the channel if the
// committer is busy, so no wake-up is lost.
func (db *DB) signal() {
	select {
	case db.wake <- struct{}{}:
	default:
	}
}

// run is the committer goroutine. It exits once Close was called and the
// queue is empty.
func (db *DB) run() {
	defer close(db.done)
	for {
		group, ok := db.next()
		if !ok {
			return
		}
		db.commitGroup(group)
	}
}

// next waits for batches and takes the longest prefix of the queue that
// fits in one transaction (at least one batch).
func (db *DB) next() ([]*pending, bool) {
	db.mu.Lock()
	for len(db.queue) == 0 {
		if db.closing {
			db.mu.Unlock()
			return nil, false
		}
		db.mu.Unlock()
		<-db.wake
		db.mu.Lock()
	}
	var est, count int64
	bytes, n := 0, 0
	for ; n < len(db.queue); n++ {
		p := db.queue[n]
		if n > 0 && (bytes+p.b.bytes > db.opt.MaxBatchBytes ||
			est+p.est >= db.maxTxnSize || count+p.count >= db.maxTxnCount) {
			break
		}
		est += p.est
		count += p.count
		bytes += p.b.bytes
	}
	group := make([]*pending, n)
	copy(group, db.queue)
	rest := copy(db.queue, db.queue[n:])
	clear(db.queue[rest:])
	db.queue = db.queue[:rest]
	db.mu.Unlock()
	return group, true
}

// commitGroup writes group as one transaction and reports the outcome to
// every batch in it.
func (db *DB) commitGroup(group []*pending) {
	syncer := db.opt.Syncer
	err := db.write(group)
	if len(group) > 1 && (errors.Is(err, badger.ErrTxnTooBig) || errors.Is(err, ErrNoSpace)) {
		// Our estimate disagreed with badger's, or the group is refused
		// for want of space where some of its batches (maintenance ones,
		// smaller ones) may pass; nothing was written. Commit the
		// batches one by one instead.
		for _, p := range group {
			db.commitGroup([]*pending{p})
		}
		return
	}
	if syncer != nil && err != nil {
		syncer.NotWritten(len(group)) // each pending batch was announced (submit)
	}
	markWritten(group)
	if err == nil && db.opt.Syncer != nil {
		// SyncWrites is off: the transaction is in badger's mapped WAL and
		// value log; a shared round makes it durable. Wait for it off the
		// committer, which goes on with the next group meanwhile, so that
		// writes keep coming while a round runs (the next writer of an
		// account waits only for "written", see SubmitWritten).
		db.syncing.Add(1)
		go func() {
			defer db.syncing.Done()
			err := syncer.Written(len(group), urgent(group))
			if err == nil {
				// One check for the groups of this DB that the round
				// made durable (it starts after their syncs returned).
				err = db.afterSync.do(db.fence.check)
			}
			if err != nil {
				err = db.fail(err)
				db.stats.failed.Add(uint64(len(group)))
			}
			for _, p := range group {
				p.done <- err
			}
		}()
		return
	}
	if err == nil && db.opt.Syncer == nil {
		// badger synced it: nobody is told before the epoch is checked
		// again (epoch.go).
		if ferr := db.fence.check(); ferr != nil {
			err = db.fail(ferr)
		}
	}
	if err != nil {
		db.stats.failed.Add(uint64(len(group)))
	}
	for _, p := range group {
		p.done <- err
	}
}

// write commits the batches of group in one badger transaction.
func (db *DB) write(group []*pending) error {
	db.mu.Lock()
	failed := db.failed
	db.mu.Unlock()
	if failed != nil {
		return failed
	}
	if db.testHookBeforeWrite != nil {
		db.testHookBeforeWrite()
	}
	// The fencing token: a round of an open that another open has
	// superseded writes nothing (epoch.go).
	if err := db.fence.check(); err != nil {
		return db.fail(err)
	}
	vb, wb := bounds(group, db.threshold)
	claimed, err := db.makeRoom(group, vb, wb)
	if err != nil {
		return err // nothing written: not a failure of the DB
	}
	defer db.space.release(claimed)
	txn := db.bdb.NewTransaction(true)
	defer txn.Discard()
	var entries, bytes uint64
	for _, p := range group {
		for _, o := range p.b.ops {
			var err error
			if o.del {
				err = txn.Delete(o.key)
			} else {
				e := badger.NewEntry(o.key, o.value)
				if o.ttl > 0 {
					e = e.WithTTL(o.ttl)
				}
				err = txn.SetEntry(e)
			}
			if errors.Is(err, badger.ErrTxnTooBig) {
				return fmt.Errorf("%w: %w", ErrBatchTooBig, err)
			}
			if err != nil {
				// Nothing has been written yet: not a failure of the DB.
				return fmt.Errorf("storage: commit %s: %w", db.dir, err)
			}
			entries++
		}
		bytes += uint64(p.b.bytes)
	}
	if entries == 0 {
		return nil
	}
	err = txn.Commit()
	db.stats.commits.Add(1)
	if err == nil {
		if se := db.syncErr.Load(); se != nil {
			err = *se
		}
	}
	if err != nil {
		return db.fail(err)
	}
	db.pre.wrote(vb, wb)
	if f := db.onWritten.Load(); f != nil {
		for _, p := range group {
			(*f)(p.b)
		}
	}
	db.stats.entries.Add(entries)
	db.stats.bytes.Add(bytes)
	for {
		m := db.stats.maxMerged.Load()
		if int64(len(group)) <= m || db.stats.maxMerged.CompareAndSwap(m, int64(len(group))) {
			break
		}
	}
	return nil
}

// fail makes the DB refuse all later writes and returns the sticky error.
func (db *DB) fail(cause error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.failed == nil {
		db.failed = fmt.Errorf("%w: %s: %w", ErrFailed, db.dir, cause)
		close(db.failedC)
		if errors.Is(cause, ErrFenced) {
			db.log.Error("storage: the directory was opened elsewhere (a newer epoch): this open writes nothing more and must close", "err", cause)
		} else {
			db.log.Error("storage: commit failed; refusing further writes until reopened", "err", cause)
		}
	}
	return db.failed
}

// noteSyncError is called by the badger logger when badger logged, but did
// not return, a failed value-log sync.
func (db *DB) noteSyncError(msg string) {
	err := errors.New(msg)
	db.syncErr.CompareAndSwap(nil, &err)
}

// makeRoom checks, before a transaction of group that writes up to vb
// bytes to the value log and wb to the WAL, that the filesystem has the
// room (space.go) and allocates the pages it will write (prealloc.go). A
// refusal wraps ErrNoSpace and leaves the DB working. A group that only
// changes or deletes records (Batch.maintenance) may use the floor: it is
// what frees space.
func (db *DB) makeRoom(group []*pending, vb, wb int64) (claimed int64, err error) {
	maintenance := true
	for _, p := range group {
		maintenance = maintenance && p.b.maintenance
	}
	// The allocation, and the WAL bytes again in case the memtable
	// rotates in this write (into a new WAL not allocated yet).
	db.pre.mu.Lock()
	need := db.pre.needLocked(vb, wb) + wb + pageSlack
	db.pre.mu.Unlock()
	if err := db.space.claimWrite(need, maintenance); err != nil {
		return 0, fmt.Errorf("storage: commit %s: %w", db.dir, err)
	}
	db.pre.mu.Lock()
	defer db.pre.mu.Unlock()
	if err := db.pre.ensureLocked(vb, wb); err != nil {
		db.space.release(need)
		return 0, fmt.Errorf("storage: commit %s: %w", db.dir, err)
	}
	return need, nil
}
