package storage

import (
	"bytes"
	"slices"
	"sync"
)

// The mailbox model of recently appended-to accounts, kept in memory.
//
// Every append reads its account's model (the account record, the state
// and every folder record: one badger lookup and one JSON decoding per
// folder) before it writes the next one. With a few messages per second
// per account that was 7% of the node's CPU under `make bench` (storage.
// (*Partition).model in the profile). The account actor is the only
// appender of its account and holds the account lock from the read until
// its batch is written, so the model its batch leaves is exactly what the
// next append would read back.
//
// How it stays true: the cache is changed only by the committer, after a
// transaction is written (DB.written, in commit order), never by a
// reader. A batch of an append carries the model it leaves (Batch.model)
// and sets it; any other written batch that touches an account's a/, s/ or
// g/ records (a folder operation, an expunge, a deletion, a repair, a
// migration, a transfer) drops that account's entry, so the next append
// reads the records again. A lookup therefore never returns less than the
// written records say, which is all the records themselves promise before
// a sync round (AppendAsync). A batch that fails to write changes nothing.
//
// Bounded: at most maxCachedModels accounts per partition, and only
// models of at most maxCachedFolders folders; beyond that an entry is
// dropped (any one) or not kept.
type modelCache struct {
	mu sync.Mutex
	m  map[string]cachedModel
}

type cachedModel struct {
	st mailboxState
	fs []Folder
}

// modelUpdate is the model an append's batch leaves for its account.
type modelUpdate struct {
	addr string
	st   mailboxState
	fs   []Folder
}

const (
	maxCachedModels  = 256
	maxCachedFolders = 64
)

// get returns addr's model as the last written batch left it, or false.
// The folders are a copy the caller may change.
func (c *modelCache) get(addr string) (mailboxState, []Folder, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[addr]
	if !ok {
		return mailboxState{}, nil, false
	}
	return e.st, slices.Clone(e.fs), true
}

// written applies a batch the committer wrote: its model, if it carries
// one, and drops every other account whose model records it touched.
func (c *modelCache) written(b *Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range b.ops {
		addr, ok := modelRecordAccount(o.key)
		if !ok || (b.model != nil && string(addr) == b.model.addr) {
			continue
		}
		delete(c.m, string(addr))
	}
	u := b.model
	if u == nil {
		return
	}
	if len(u.fs) > maxCachedFolders {
		delete(c.m, u.addr)
		return
	}
	if c.m == nil {
		c.m = make(map[string]cachedModel)
	}
	if _, ok := c.m[u.addr]; !ok && len(c.m) >= maxCachedModels {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[u.addr] = cachedModel{st: u.st, fs: u.fs}
}

// drop empties the cache for good: the partition is closed, and nothing
// writes through it again.
func (c *modelCache) drop() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// modelRecordAccount returns the account of a key the model is read from:
// a/<addr>, s/<addr>, g/<addr>\0<folder id: 4 bytes>.
func modelRecordAccount(k []byte) ([]byte, bool) {
	switch {
	case bytes.HasPrefix(k, prefixAccount), bytes.HasPrefix(k, prefixState):
		return k[2:], true
	case bytes.HasPrefix(k, prefixFolder) && len(k) >= len(prefixFolder)+5 && k[len(k)-5] == 0:
		return k[2 : len(k)-5], true
	}
	return nil, false
}
