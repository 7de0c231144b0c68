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
			err := db.bdb.RunValueLogGC(gcDiscardRatio)
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
