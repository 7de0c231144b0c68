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
type Syncer struct {
	dir  string
	sync func() error // one syncfs round

	mu      sync.Mutex
	cond    *sync.Cond
	started uint64 // rounds started
	done    uint64 // rounds finished
	running bool
	err     error

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
}

func newSyncer(dir string, f func() error) *Syncer {
	s := &Syncer{dir: dir, sync: f}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Sync returns once a syncfs round that started after Sync was called has
// completed, with that round's error (or a later one's). Once a round has
// failed, every later Sync fails too: the kernel may have dropped the dirty
// pages it could not write, so nothing written since can be promised.
func (s *Syncer) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits++
	target := s.started + 1
	for s.done < target {
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		s.started++
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
	return SyncerStats{Rounds: s.rounds, Waits: s.waits, RoundTime: s.roundTime}
}
