package storage

import (
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Defaults for the zero Options.
const (
	// DefaultMemTableSize is badger's memtable size when Options.MemTableSize
	// is 0. badger's own default is 64 MiB; a node holds many partitions,
	// so it is much smaller here. It also bounds one transaction: badger
	// refuses a transaction larger than 15% of it.
	DefaultMemTableSize = 8 << 20
	// PartitionsMemTableBudget is what the memtables of a node's
	// partitions may take together (PartitionMemTableSize). Each badger
	// database fills its memtable before it flushes it, and a node writes
	// to all its partitions: at 8 MiB each, 16 partitions held ~190 MB of
	// memtables with 20,000 active accounts (issue #14: RSS 304 MB with
	// 100,000 accounts, 58 MB with 500).
	PartitionsMemTableBudget = 64 << 20
	// MinMemTableSize is the smallest memtable accepted; smaller values are
	// raised to it.
	MinMemTableSize = 1 << 20
	// DefaultMaxBatchBytes bounds how many bytes of keys and values the
	// committer merges into one transaction.
	DefaultMaxBatchBytes = 1 << 20
	// DefaultValueLogGCInterval is how often value-log GC runs when
	// Options.ValueLogGCInterval is 0.
	DefaultValueLogGCInterval = 10 * time.Minute
	// MaxValueBytes is the largest value (message body) a DB accepts; it is
	// the value-log file size, which badger requires a value to fit in. The
	// SMTP layer must keep its SIZE limit (RFC 1870) below it.
	MaxValueBytes = 64 << 20
)

// Options tunes a DB. The zero value is usable: every zero field takes the
// default documented on it. Options are read once, by Open.
type Options struct {
	// Logger receives badger's warnings and errors and the store's own
	// messages; nil discards them. badger's info and debug output is
	// dropped.
	Logger *slog.Logger
	// MemTableSize is the size of one badger memtable in bytes; 0 means
	// DefaultMemTableSize, values below MinMemTableSize are raised to it.
	MemTableSize int64
	// MaxBatchBytes is the most key+value bytes the committer merges into
	// one transaction (one sync); 0 means DefaultMaxBatchBytes. A single
	// batch larger than this is still committed, alone.
	MaxBatchBytes int
	// ValueLogGCInterval is the pause between value-log GC passes; 0 means
	// DefaultValueLogGCInterval, a negative value turns GC off.
	ValueLogGCInterval time.Duration
	// InlineBodyBytes is the largest body a body writer (NewBody) keeps
	// in memory and the store keeps in badger; larger ones are files of
	// the store (blob.go). 0 means DefaultInlineBodyBytes.
	InlineBodyBytes int
	// Syncer, when set, makes commits durable with a filesystem-wide
	// syncfs round shared by every DB that uses the same Syncer, instead
	// of badger's per-transaction sync (see syncer.go). It must be a
	// Syncer for the filesystem that holds the DB.
	Syncer *Syncer
	// Space, when set, is the free-space guard of the filesystem that
	// holds the DB (space.go): a write that would take the free space
	// below what badger needs for its own writes is refused with
	// ErrNoSpace before badger sees it, and appends refuse below its
	// admission limit. nil: no such checks (allocation ahead of badger's
	// writes is done either way, prealloc.go).
	Space *Space
	// TableBuffers, when set, holds the buffers the DB builds its new
	// tables in, shared with every other DB given the same TableBuffers
	// (tablebuffers.go); nil: the DB keeps its own, as badger does.
	TableBuffers *TableBuffers
	// Owner names the opener (the node's name) in the directory's lock
	// and epoch files, so that another node that finds the directory held
	// or fenced can say by whom.
	Owner string

	// lockHook, when set by this package's tests, stands in for the
	// kernel's answer to a lock call (lock.go).
	lockHook lockHook
}

// profile is what differs between the kinds of DB this package opens.
type profile struct {
	// valueThreshold: values at least this long go to the value log, shorter
	// ones live in the LSM tree (and its WAL).
	valueThreshold int64
}

// Value thresholds, chosen per store:
//
//   - The queue is churny: a message is written and, once delivered,
//     deleted within milliseconds. In the LSM tree a body is written to the
//     WAL, copied into the memtable, flushed into an L0 table (with its
//     tombstone) and rewritten by compaction; in the value log it is written
//     once and its file is dropped by value-log GC once nearly all of it is
//     garbage, which for a queue happens quickly. Measured with the node
//     under load (make bench, syncfs mode), bodies in the value log gave
//     about 10% more throughput than bodies in the tree. So the queue keeps
//     bodies from 1 KiB up in the value log; envelopes stay in the tree.
//   - Mailboxes keep bodies for months. In the LSM tree every compaction
//     would rewrite them again; in the value log they are written once. So
//     everything but small records (metadata, state, aliases) goes to the
//     value log: listing a mailbox reads only metadata keys and never
//     touches a body.
var (
	queueProfile   = profile{valueThreshold: 1 << 10}
	mailboxProfile = profile{valueThreshold: 512}
	// genericProfile is used by Open: small values in the tree, bodies in
	// the value log.
	genericProfile = profile{valueThreshold: 1 << 10}
)

// PartitionMemTableSize is the memtable size of each of n partitions:
// their share of PartitionsMemTableBudget, at most DefaultMemTableSize and
// at least 4 MiB. (A memtable bounds one transaction to 15% of it: 4 MiB
// still takes a folder operation's chunk of 500 messages, folderops.go.)
func PartitionMemTableSize(n int) int64 {
	if n < 1 {
		n = 1
	}
	return min(max(PartitionsMemTableBudget/int64(n), 4<<20), DefaultMemTableSize)
}

// normalized returns o with the defaults filled in.
func (o Options) normalized() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.MemTableSize < MinMemTableSize {
		o.MemTableSize = MinMemTableSize
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.InlineBodyBytes <= 0 {
		o.InlineBodyBytes = DefaultInlineBodyBytes
	}
	if o.ValueLogGCInterval == 0 {
		o.ValueLogGCInterval = DefaultValueLogGCInterval
	}
	return o
}

// badgerOptions turns normalized Options into badger's, tuned for many
// small databases per process: badger's defaults (64 MiB memtables, four
// compactors, a 256 MiB block cache, 1 GiB value-log files) cost 3.9 s,
// 1,025 goroutines and 33 MB RSS for 64 databases.
func badgerOptions(dir string, o Options, p profile, log badger.Logger) badger.Options {
	threshold := p.valueThreshold
	// badger refuses a threshold above its largest transaction (15% of the
	// memtable); stay well below it.
	if maxTxn := o.MemTableSize * 15 / 100; threshold > maxTxn/4 {
		threshold = maxTxn / 4
	}
	return badger.DefaultOptions(dir).
		// Every transaction is synced before Commit returns (see
		// commit.go), by badger itself or, with a Syncer, by its syncfs
		// round.
		WithSyncWrites(o.Syncer == nil).
		WithLogger(log).
		WithMetricsEnabled(false). // badger's metrics are process-global expvars
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(3).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(10).
		WithNumCompactors(2). // the minimum; 1 is refused, 0 stops compaction
		WithNumGoroutines(2).
		// No compression means no block cache is needed, and no ristretto
		// cache (with its goroutines) per database; tables are mmapped.
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithAllocatorPool(o.TableBuffers.allocatorPool()).
		WithValueLogFileSize(MaxValueBytes).
		WithValueThreshold(threshold).
		WithNumVersionsToKeep(1).
		// The committer is the only writer and callers serialise their
		// read-modify-write cycles themselves.
		WithDetectConflicts(false)
}
