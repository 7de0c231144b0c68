package storage

import "github.com/dgraph-io/ristretto/v2/z"

// tableBuffersKept is how many table builders' buffers TableBuffers keeps
// between builds: about what the node's two cores build at once.
const tableBuffersKept = 2

// TableBuffers is the memory that every DB given it (Options.TableBuffers)
// builds its new tables in: a memtable flush or a compaction assembles
// the table's blocks in a buffer before it writes the file (badger's
// table.Builder over a z.Allocator).
//
// Why: badger gives each database a pool of its own that keeps up to
// eight builders' buffers, released one per 2 s only once the database
// stops building. A loaded node flushes all its partitions, so every one
// kept what it last built with: 84 MB of a node's 239 MB live heap with
// 100,000 accounts (issue #14's RSS target). Shared, the node keeps
// tableBuffersKept of them; a build that finds none takes a fresh buffer
// and the collector takes it back afterwards.
//
// Close it after every DB that uses it has closed.
type TableBuffers struct {
	pool *z.AllocatorPool
}

// NewTableBuffers returns an empty TableBuffers.
func NewTableBuffers() *TableBuffers {
	return &TableBuffers{pool: z.NewAllocatorPool(tableBuffersKept)}
}

// Close frees the kept buffers and stops the pool's goroutine.
func (b *TableBuffers) Close() error {
	b.pool.Release()
	return nil
}

// allocatorPool is badger's form of b; nil (the DB keeps its own) for a
// nil b.
func (b *TableBuffers) allocatorPool() *z.AllocatorPool {
	if b == nil {
		return nil
	}
	return b.pool
}
