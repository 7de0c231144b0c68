package resolve

import (
	"container/list"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// answer is what the cache keeps of one reply: the records of the type
// asked for, whether the name does not exist or has none of them, and
// the AD bit.
type answer struct {
	rrs      []dns.RR
	notFound bool
	ad       bool
	expires  time.Time
}

type cacheKey struct {
	name  string // lower case, fully qualified
	qtype uint16
}

type cacheEntry struct {
	key cacheKey
	ans answer
}

// cache holds answers until their TTL passes, at most max of them; when
// full, the least recently used goes. Safe for concurrent use.
type cache struct {
	max int
	now func() time.Time

	mu    sync.Mutex
	items map[cacheKey]*list.Element
	lru   *list.List // front: most recently used
}

func newCache(max int, now func() time.Time) *cache {
	return &cache{max: max, now: now, items: map[cacheKey]*list.Element{}, lru: list.New()}
}

// get returns the answer for k if it has not expired.
func (c *cache) get(k cacheKey) (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return answer{}, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.ans.expires) {
		c.lru.Remove(el)
		delete(c.items, k)
		return answer{}, false
	}
	c.lru.MoveToFront(el)
	return e.ans, true
}

// put keeps a for k, dropping the least recently used entry when full.
func (c *cache) put(k cacheKey, a answer) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value.(*cacheEntry).ans = a
		c.lru.MoveToFront(el)
		return
	}
	for c.lru.Len() >= c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
	c.items[k] = c.lru.PushFront(&cacheEntry{key: k, ans: a})
}

// len is the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
