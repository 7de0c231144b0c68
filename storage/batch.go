package storage

import (
	"bytes"
	"fmt"
	"time"
)

// Batch is a set of writes that a DB commits atomically: after a crash
// either all of them are on disk or none is. Later writes to the same key
// in one batch win. The zero value is an empty batch ready for use.
//
// A Batch keeps the key and value slices it is given, without copying (a
// message body can be megabytes); the caller must not modify them until the
// result of Submit or Commit has arrived. A Batch must not be changed or
// submitted again after it was submitted. It is not safe for concurrent use.
type Batch struct {
	ops   []op
	bytes int // key and value bytes
	// maintenance: the batch only changes or deletes records (a queue
	// entry's results, a deleted message), so it may be written when the
	// disk is short of space (DB.makeRoom): such writes are what frees it.
	maintenance bool
	// model: the mailbox model an append leaves for its account
	// (modelcache.go).
	model *modelUpdate
	// announced: the DB's Syncer was told this batch is coming
	// (DB.announce); Submit takes the announcement over.
	announced bool
	// background: nobody waits for this batch to be durable (the
	// queue's record of an attempt, a delivery the queue made): a sync
	// round that covers only such batches may wait the whole gap for
	// more (Syncer.Written).
	background bool
}

// op is one write of a batch.
type op struct {
	key, value []byte
	del        bool
	ttl        time.Duration // 0 = never expires
}

// Set writes value under key.
func (b *Batch) Set(key, value []byte) {
	b.ops = append(b.ops, op{key: key, value: value})
	b.bytes += len(key) + len(value)
}

// setTTL writes value under key; readers stop seeing it ttl after the
// commit and compaction removes it.
func (b *Batch) setTTL(key, value []byte, ttl time.Duration) {
	b.ops = append(b.ops, op{key: key, value: value, ttl: ttl})
	b.bytes += len(key) + len(value)
}

// Delete removes key; deleting a missing key is not an error.
func (b *Batch) Delete(key []byte) {
	b.ops = append(b.ops, op{key: key, del: true})
	b.bytes += len(key)
}

// Len returns the number of writes (sets and deletes) in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// badger's limits on keys (txn.go modify) and its reserved key prefix.
const maxKeyBytes = 65000

var badgerPrefix = []byte("!badger!")

// size is what badger charges a batch against its transaction limits
// (Entry.estimateSizeAndSetThreshold plus the 10 bytes of version that
// txn.checkSize adds): values below the threshold count in full, others as a
// 12-byte value pointer.
func (b *Batch) size(threshold int64) (est, count int64) {
	for _, o := range b.ops {
		v := int64(len(o.value))
		if v >= threshold {
			v = 12
		}
		est += int64(len(o.key)) + v + 2 + 10
		count++
	}
	return est, count
}

// validate reports what badger would refuse in a single write, so that one
// bad batch never fails a merged commit of others.
func (b *Batch) validate() error {
	for _, o := range b.ops {
		switch {
		case len(o.key) == 0:
			return fmt.Errorf("%w: empty key", ErrInvalidKey)
		case len(o.key) > maxKeyBytes:
			return fmt.Errorf("%w: key of %d bytes (max %d)", ErrInvalidKey, len(o.key), maxKeyBytes)
		case bytes.HasPrefix(o.key, badgerPrefix):
			return fmt.Errorf("%w: key %q is in badger's reserved namespace", ErrInvalidKey, o.key)
		case len(o.value) > MaxValueBytes:
			return fmt.Errorf("%w: %d bytes (max %d)", ErrValueTooBig, len(o.value), MaxValueBytes)
		case o.ttl < 0:
			return fmt.Errorf("storage: negative ttl for key %q", o.key)
		}
	}
	return nil
}
