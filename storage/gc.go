package storage

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// gcDiscardRatio: a value-log file is rewritten when at least half of it is
// garbage (badger's recommended value).
const gcDiscardRatio = 0.5

// gcMaxRewrites bounds one GC pass, so that Close never waits long for it.
const gcMaxRewrites = 16

// gcLoop runs value-log GC every interval until gcStop is closed. badger
// never reclaims value-log space by itself: a deleted body stays in its file
// until GC rewrites the file's live entries elsewhere and removes it.
func (db *DB) gcLoop(interval time.Duration) {
	defer close(db.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-db.gcStop:
			return
		case <-t.C:
		}
		for range gcMaxRewrites {
			select {
			case <-db.gcStop:
				return
			default:
			}
			if !db.gcRoom() {
				break
			}
			err := db.bdb.RunValueLogGC(gcDiscardRatio)
			db.pre.gcEnd(err == nil)
			db.stats.gcRuns.Add(1)
			if err != nil {
				if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
					db.log.Warn("storage: value-log GC", "err", err)
				}
				break
			}
			db.stats.gcRewrites.Add(1)
		}
	}
}

// gcRoom reports whether there is room for a GC rewrite: the live
// entries of a value-log file (at most half of it: GC rewrites files that
// are at least half garbage) go to the current value log and their
// pointers to the WAL, without allocation ahead (prealloc.go gcEnd). GC
// frees space, but only after it has written the live part elsewhere: on
// a disk short of that, it waits for a later pass.
func (db *DB) gcRoom() bool {
	n := db.pre.vlog.size / 2 // ValueLogFileSize: a file and its pointers
	if !db.space.roomFor(n) {
		db.log.Debug("storage: value-log GC skipped: not enough free space to rewrite a file", "need", FormatBytes(n))
		return false
	}
	return true
}
