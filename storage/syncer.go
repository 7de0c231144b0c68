package storage

import (
	"fmt"
	"sync"
	"time"
)

// Syncer makes writes durable for every DB on one filesystem at once: one
// syncfs(2) call flushes the dirty pages of all files of the filesystem (the
// WALs and value logs of every partition and of the queue, rotated or not)
// and commits its journal. It turns the per-DB group commit into a
// node-wide one.
//
// Why: each badger DB syncs once per transaction. A node holds one DB per
// account partition, and concurrent deliveries spread over the partitions,
// so per-DB merging finds little to merge: 20 writers over 16 partitions
// made about one sync per append (BenchmarkAppend). With a shared Syncer,
// the DBs open with SyncWrites=false, each committer writes its merged
// transaction to badger's memory-mapped WAL and value log, and then joins
// the next syncfs round; every commit of every DB that finished before the
// round started is covered by it. badger's own durability gap with
// SyncWrites=false (db.Sync covers only the active memtable's WAL) does not
// arise, because syncfs writes back every dirty page of the filesystem.
//
// The price: a round also flushes unrelated dirty data of the same
// filesystem, so the data directory should be on a filesystem of its own in
// production. Filesystems without a meaningful syncfs (network filesystems)
// should use the per-DB mode (Options.Syncer nil).
//
// A Syncer is safe for concurrent use. Rounds never overlap; a caller
// waits for a round that started after it called Sync.
//
// Holding a round (SetGap, at most the gap): a write is announced when it
// starts (Writing: an append as it begins to read and summarize its
// message, a batch as it is queued) and ends when it is written (Written,
// which syncs, or NotWritten); Written also says whether someone waits
// for it (urgent: an SMTP client for its 250, an IMAP client for its OK)
// or not (the queue's record of an attempt, a delivery the queue made, the
// journal). A round starts once someone waits for it and no announced
// write is under way, or when the gap has passed. So a round with a client
// behind it waits only for the writes that would otherwise take the next
// round, and a round nobody waits for collects what comes within the gap,
// ending as soon as a client's write joins it. Why: a round costs about
// the same whatever it covers (on the 2-core test machine under load a
// syncfs took 1.4-1.6 ms whether it covered 3 commits or 6; each is a
// journal commit and a rewrite of the partly filled last pages of every
// log it touches) and the machine was CPU-bound; a backend's deliveries,
// which no client waits for, took a round for every 3. DefaultSyncGap in
// package node has the measurements.
type Syncer struct {
	dir  string
	sync func() error // one syncfs round

	mu      sync.Mutex
	cond    *sync.Cond
	started uint64 // rounds started
	done    uint64 // rounds finished
	running bool
	err     error

	// Holding rounds: gap (0: never), the writes under way (Writing
	// minus Written and NotWritten), whether someone waits for the next
	// round (an urgent Sync or Written), and, while a round is held, the
	// channel closed when one of those changes.
	gap        time.Duration
	writing    int
	nextUrgent bool
	wake       chan struct{}
	held       uint64 // rounds held
	joined     uint64 // Sync calls that came while a round was held

	rounds, waits uint64
	roundTime     time.Duration

	dev     uint64 // the filesystem's device number, when known
	hasDev  bool
	closeFn func() error
}

// Close releases the Syncer's directory handle. DBs using it must be
// closed first.
func (s *Syncer) Close() error {
	if s.closeFn == nil {
		return nil
	}
	return s.closeFn()
}

// SyncerStats counts a Syncer's work.
type SyncerStats struct {
	// Rounds is the number of syncfs calls; Waits the number of Sync
	// calls they covered. Waits/Rounds is the node-wide merge factor.
	Rounds, Waits uint64
	// RoundTime is the time spent in syncfs, summed over rounds.
	RoundTime time.Duration
	// Held is the number of rounds that waited for writes under way
	// (SetGap), Joined the Sync calls that came while they waited.
	Held, Joined uint64
}

func newSyncer(dir string, f func() error) *Syncer {
	s := &Syncer{dir: dir, sync: f}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// SetGap sets how long a round may be held (see Syncer). 0 (the default)
// turns holding off.
func (s *Syncer) SetGap(gap time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gap = max(gap, 0)
}

// Writing says that n writes have started that Written or NotWritten
// will end: a round about to start waits for them (at most the gap).
func (s *Syncer) Writing(n int) {
	s.mu.Lock()
	s.writing += n
	s.mu.Unlock()
}

// NotWritten ends n writes announced by Writing that will not sync (they
// failed, were refused, or were found to be duplicates).
func (s *Syncer) NotWritten(n int) {
	s.mu.Lock()
	s.settle(n)
	s.mu.Unlock()
}

// Written ends n writes announced by Writing and makes them durable, like
// Sync. urgent says that someone waits for them (an SMTP client for its
// 250, an IMAP client for its OK); writes that nobody waits for (the
// queue's record of an attempt, a delivery the queue made) let a round
// that covers only such writes wait the whole gap for more.
func (s *Syncer) Written(n int, urgent bool) error {
	s.mu.Lock()
	s.settle(n)
	return s.syncLocked(urgent)
}

// settle ends n writes under way; s.mu is held.
func (s *Syncer) settle(n int) {
	s.writing = max(s.writing-n, 0)
	if s.writing == 0 {
		s.poke()
	}
}

// poke wakes a held round to look again; s.mu is held.
func (s *Syncer) poke() {
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

// ready says whether the round about to start may start: someone waits
// for it and no write is under way. s.mu is held.
func (s *Syncer) ready() bool { return s.nextUrgent && s.writing == 0 }

// hold waits, with s.mu held on entry and on return, until the round
// about to start is ready or the gap has passed. Callers that arrive
// meanwhile see s.running and join it.
func (s *Syncer) hold() {
	if s.gap <= 0 || s.ready() {
		return
	}
	s.held++
	w0 := s.waits
	t := time.NewTimer(s.gap)
	defer t.Stop()
	for !s.ready() {
		ch := make(chan struct{})
		s.wake = ch
		s.mu.Unlock()
		expired := false
		select {
		case <-ch:
		case <-t.C:
			expired = true
		}
		s.mu.Lock()
		if s.wake == ch {
			s.wake = nil
		}
		if expired {
			break
		}
	}
	s.joined += s.waits - w0
}

// Sync returns once a syncfs round that started after Sync was called has
// completed, with that round's error (or a later one's). Once a round has
// failed, every later Sync fails too: the kernel may have dropped the dirty
// pages it could not write, so nothing written since can be promised.
func (s *Syncer) Sync() error {
	s.mu.Lock()
	return s.syncLocked(true)
}

// syncLocked is Sync with s.mu held (urgent: see Written); it unlocks it.
func (s *Syncer) syncLocked(urgent bool) error {
	defer s.mu.Unlock()
	s.waits++
	target := s.started + 1
	if urgent {
		s.nextUrgent = true // of round target, about to start or after the one running
		s.poke()
	}
	for s.done < target {
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		s.hold()
		s.started++
		s.nextUrgent = false // the round takes every waiter so far
		round := s.started
		s.rounds++
		s.mu.Unlock()
		t0 := time.Now()
		err := s.sync()
		took := time.Since(t0)
		s.mu.Lock()
		s.roundTime += took
		s.running = false
		s.done = round
		if err != nil && s.err == nil {
			s.err = fmt.Errorf("%w: syncfs %s: %w", ErrFailed, s.dir, err)
		}
		s.cond.Broadcast()
	}
	if s.err != nil {
		return s.err
	}
	return nil
}

// Stats returns the Syncer's counters.
func (s *Syncer) Stats() SyncerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SyncerStats{Rounds: s.rounds, Waits: s.waits, RoundTime: s.roundTime, Held: s.held, Joined: s.joined}
}
