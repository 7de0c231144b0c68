package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/dgraph-io/badger/v4"

	"github.com/homing-mail/homing/mail"
)

// DB is one badger database with its group committer and value-log GC.
//
// All methods are safe for concurrent use. Writes go through Submit or
// Commit and are acknowledged only once synced; reads (Get, Scan) see every
// write that has been acknowledged. While a DB is open it holds Homing's
// lock on its directory, which fences every other open of it (lock.go), and
// checks in every commit round that no other open has taken the directory
// since (epoch.go).
type DB struct {
	dir   string
	bdb   *badger.DB
	fence *fence
	// afterSync shares the epoch checks after a sync round (fence.go).
	afterSync sharedCheck
	opt       Options
	prof      profile
	log       *slog.Logger

	// badger's limits for one transaction (15% of the memtable).
	maxTxnSize, maxTxnCount int64

	// The committer's queue; see commit.go.
	mu      sync.Mutex
	queue   []*pending
	closing bool  // no more Submits
	failed  error // sticky: set after a failed commit, wraps ErrFailed
	// failedC is closed when failed is set.
	failedC chan struct{}
	wake    chan struct{}
	done    chan struct{} // closed when the committer has drained and exited

	// onWritten, when set, sees every batch the committer wrote, in
	// commit order, before its writer is told (a partition's model cache,
	// modelcache.go).
	onWritten atomic.Pointer[func(*Batch)]

	// syncErr is set by the badger logger when badger swallowed a failed
	// value-log sync; see logger.go.
	syncErr atomic.Pointer[error]

	// rw keeps badger open while readers use it; Close takes it for
	// writing.
	rw     sync.RWMutex
	closed bool

	gcStop chan struct{}
	gcDone chan struct{}

	// syncing counts the goroutines waiting for a Syncer round for a
	// written group (see commitGroup).
	syncing sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	stats dbCounters

	// Free space (space.go, prealloc.go): the guard of the filesystem
	// (nil: none), the allocation ahead of badger's writes, badger's
	// value threshold, and the estimate of what compactions may write
	// (refreshHeadroom).
	space      *Space
	pre        *prealloc
	threshold  int64
	compaction atomic.Int64

	// testHookBeforeWrite, if set (by tests only, while no write is in
	// flight), is
	// called by the committer before each transaction.
	testHookBeforeWrite func()
}

// DBStats is a snapshot of a DB's counters.
type DBStats struct {
	// Batches is the number of batches accepted by Submit.
	Batches uint64
	// Commits is the number of badger transactions written. badger makes
	// one sync round per transaction (an msync of its WAL and one of its
	// value-log file), so this is also the number of syncs;
	// Batches/Commits is the merge factor.
	Commits uint64
	// Entries and Bytes count the writes and the key+value bytes committed.
	Entries uint64
	Bytes   uint64
	// Failed is the number of accepted batches whose commit failed.
	Failed uint64
	// MaxMerged is the largest number of batches merged into one commit.
	MaxMerged int
	// Pending is the number of batches waiting for the committer now.
	Pending int
	// GCRuns counts value-log GC attempts, GCRewrites those that rewrote a
	// value-log file.
	GCRuns     uint64
	GCRewrites uint64
}

type dbCounters struct {
	batches, commits, entries, bytes, failed atomic.Uint64
	maxMerged                                atomic.Int64
	gcRuns, gcRewrites                       atomic.Uint64
}

// Open opens (creating it if needed) the badger database in dir with the
// group committer and value-log GC started. Values of 1 KiB and more go to
// the value log. It fails with an error wrapping ErrLocked if dir is open
// elsewhere, in this process or another, with one wrapping ErrLockFailed
// if its lock cannot be taken at all (lock.go), and with one wrapping
// ErrDamaged if its files are damaged in a way that would make badger
// panic, leak or drop data (inspect.go), or badger panics opening it.
func Open(dir string, opt Options) (*DB, error) {
	return openDB(dir, opt, genericProfile)
}

func openDB(dir string, opt Options, prof profile) (*DB, error) {
	if dir == "" {
		return nil, errors.New("storage: open: empty directory name")
	}
	fc, err := takeFence(dir, opt)
	if err != nil {
		return nil, err
	}
	db, err := openFenced(dir, opt, prof, fc)
	if err != nil {
		_ = fc.release()
		return nil, err
	}
	return db, nil
}

// openFenced opens the DB in dir, whose fence the caller has taken; the DB
// releases it when it closes. On error the fence is the caller's.
func openFenced(dir string, opt Options, prof profile, fc *fence) (*DB, error) {
	opt = opt.normalized()
	db := &DB{
		fence:   fc,
		failedC: make(chan struct{}),
		dir:     dir,
		opt:     opt,
		prof:    prof,
		log:     opt.Logger.With("db", dir),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		gcStop:  make(chan struct{}),
		gcDone:  make(chan struct{}),
	}
	logger := &badgerLogger{log: db.log, onSyncError: db.noteSyncError}
	// badger's own directory lock is bypassed only because the fence's
	// lock is held (lock.go).
	bopt := badgerOptions(dir, opt, prof, logger).WithBypassLockGuard(true)
	// Look at the files before badger does (inspect.go): damage that
	// would make badger.Open panic in a goroutine of its own, leak
	// goroutines or silently drop tables is an error here instead.
	if err := inspect(dir, bopt, false); err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	bdb, err := openBadger(badger.Open, bopt)
	if err != nil {
		// badger wraps its file errors in text: a full disk (no reserve
		// file left to remove) is only seen in its words.
		if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), syscall.ENOSPC.Error()) {
			return nil, fmt.Errorf("storage: open %s: %w: %v", dir, ErrNoSpace, err)
		}
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	db.bdb = bdb
	db.maxTxnSize = bdb.MaxBatchSize()
	db.maxTxnCount = bdb.MaxBatchCount()
	db.threshold = bopt.ValueThreshold
	db.pre = newPrealloc(dir, 2*bopt.ValueLogFileSize, 2*bopt.MemTableSize, db.log)
	if opt.Space != nil {
		db.space = opt.Space
		db.refreshHeadroom()
		db.space.register(db)
	}
	go db.run()
	if opt.ValueLogGCInterval > 0 {
		go db.gcLoop(opt.ValueLogGCInterval)
	} else {
		close(db.gcDone)
	}
	return db, nil
}

// Dir returns the directory the DB was opened in.
func (db *DB) Dir() string { return db.dir }

// Epoch returns the epoch this open wrote in its directory (epoch.go).
func (db *DB) Epoch() uint64 { return db.fence.epoch }

// Failed returns a channel that is closed once the DB has failed (a
// failed commit or sync, or a newer epoch: Err says which). It refuses
// every write from then on; its owner should close it and open it again.
func (db *DB) Failed() <-chan struct{} { return db.failedC }

// view runs fn in a read-only badger transaction, unless the DB is closed.
func (db *DB) view(fn func(txn *badger.Txn) error) error {
	db.rw.RLock()
	defer db.rw.RUnlock()
	if db.closed {
		return ErrClosed
	}
	return db.bdb.View(fn)
}

// Get returns a copy of the value stored under key, or an error wrapping
// mail.ErrNotFound when there is none.
func (db *DB) Get(key []byte) ([]byte, error) {
	var out []byte
	err := db.view(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("storage: key %q: %w", key, mail.ErrNotFound)
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	return out, err
}

// has reports whether key exists.
func (db *DB) has(key []byte) (bool, error) {
	err := db.view(func(txn *badger.Txn) error {
		_, err := txn.Get(key)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Scan calls fn for every key starting with prefix, in key order, with
// copies of the key and value that fn may keep. It sees one consistent
// snapshot. An error from fn stops the scan and is returned as is. fn may
// read and write the DB but must not Close it.
func (db *DB) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return db.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if err := fn(item.KeyCopy(nil), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// scanKeys is Scan without reading values: bodies in the value log are not
// touched.
func (db *DB) scanKeys(prefix []byte, fn func(key []byte) error) error {
	return db.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			if err := fn(it.Item().KeyCopy(nil)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Stats returns a snapshot of the DB's counters.
func (db *DB) Stats() DBStats {
	db.mu.Lock()
	pending := len(db.queue)
	db.mu.Unlock()
	return DBStats{
		Batches:    db.stats.batches.Load(),
		Commits:    db.stats.commits.Load(),
		Entries:    db.stats.entries.Load(),
		Bytes:      db.stats.bytes.Load(),
		Failed:     db.stats.failed.Load(),
		MaxMerged:  int(db.stats.maxMerged.Load()),
		Pending:    pending,
		GCRuns:     db.stats.gcRuns.Load(),
		GCRewrites: db.stats.gcRewrites.Load(),
	}
}

// Err returns the sticky failure (wrapping ErrFailed) once a commit has
// failed, nil while the DB is healthy. Health checks use it.
func (db *DB) Err() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.failed
}

// Close stops accepting batches, commits every batch already submitted (and
// tells its caller), stops value-log GC and closes badger, releasing the
// directory lock. Reads running at that moment finish first; later calls of
// any method return ErrClosed. Close is idempotent; later calls return nil.
func (db *DB) Close() error {
	first := false
	db.closeOnce.Do(func() {
		first = true
		db.mu.Lock()
		db.closing = true
		db.mu.Unlock()
		db.signal()
		<-db.done
		db.syncing.Wait() // every accepted batch has its answer

		close(db.gcStop)
		<-db.gcDone

		db.rw.Lock()
		db.closed = true
		db.closeErr = db.bdb.Close()
		db.rw.Unlock()
		if db.space != nil {
			db.space.unregister(db)
		}
		if db.closeErr != nil {
			db.closeErr = fmt.Errorf("storage: close %s: %w", db.dir, db.closeErr)
		}
		// Only now that badger has stopped writing may another open
		// have the directory.
		if err := db.fence.release(); err != nil {
			db.closeErr = errors.Join(db.closeErr, err)
		}
	})
	if !first {
		return nil
	}
	return db.closeErr
}

// headroomBase is what a DB may need beyond its flushes and compactions:
// the headers of new files, a rewritten MANIFEST, the discard stats.
const headroomBase = 256 << 10

// headroom is what badger may write on its own, nobody asking: the flush
// of the memtables not flushed yet (a table about half as large again as
// their WAL bytes), a compaction (refreshHeadroom), new files' headers.
// The free-space floor of a filesystem is the sum over its DBs.
func (db *DB) headroom() int64 {
	return headroomBase + db.pre.unflushed()*3/2 + db.compaction.Load()
}

// refreshHeadroom estimates what the next compactions may write: level 0
// and the base level merged (badger's L0 compaction), and two tables of
// the largest size in use (the two compactors, one table each level
// down, with its overlap). Never more than the tree.
func (db *DB) refreshHeadroom() {
	db.pre.prune()
	db.rw.RLock()
	defer db.rw.RUnlock()
	if db.closed {
		return
	}
	var l0, base, total, file int64
	for _, li := range db.bdb.Levels() {
		total += li.Size
		switch {
		case li.Level == 0:
			l0 = li.Size
		case li.IsBaseLevel:
			base = li.Size
		}
		if li.NumTables > 0 {
			file = max(file, li.TargetFileSize)
		}
	}
	db.compaction.Store(min(total, l0+base+2*file))
}
