package actors

import (
	"sync"
	"time"
)

// metaCache keeps, for an account's actor, the size, CRLF size and
// internal date of the messages FETCH has read: they never change once a
// message is stored and message ids are never reused, so an entry is
// never stale. A FETCH of ENVELOPE or INTERNALDATE over a large folder
// then reads only the summaries (or nothing), not a record per message
// decoded from JSON; the next session's FETCH of the same folder (or
// fifty sessions' at once) finds them here. It is shared by the actor and
// the goroutines that read for it (hence the lock), bounded by
// metaCacheMax entries (beyond, it is emptied and fills again), and gone
// with the actor when it passivates.
type metaCache struct {
	mu sync.Mutex
	m  map[uint64]messageMeta
}

// messageMeta is what the cache keeps of one message.
type messageMeta struct {
	size, crlfSize int64
	received       int64 // Unix nanoseconds
}

// metaCacheMax bounds one account's cache: ~40 bytes an entry, so a few
// MiB for the largest folders a session opens.
const metaCacheMax = 1 << 18

// split looks ids up: known[i] is the entry of ids[i] when found[i].
func (c *metaCache) split(ids []uint64) (known []messageMeta, found []bool, missing []uint64) {
	known, found = make([]messageMeta, len(ids)), make([]bool, len(ids))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range ids {
		if m, ok := c.m[id]; ok {
			known[i], found[i] = m, true
		} else {
			missing = append(missing, id)
		}
	}
	return known, found, missing
}

// drop empties the cache (its actor has stopped).
func (c *metaCache) drop() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

func (c *metaCache) put(id uint64, size, crlfSize int64, received time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= metaCacheMax {
		c.m = make(map[uint64]messageMeta)
	}
	c.m[id] = messageMeta{size: size, crlfSize: crlfSize, received: received.UnixNano()}
}
