package guard

import "container/list"

// table is a map with a bound on its size: when a new key would exceed max,
// the least recently used entry that may be dropped goes first. Not safe
// for concurrent use; its owner locks.
type table[V any] struct {
	max   int
	items map[string]*list.Element
	order *list.List // front: most recently used; values are *entry[V]
}

type entry[V any] struct {
	key string
	val V
}

func newTable[V any](max int) *table[V] {
	return &table[V]{max: max, items: make(map[string]*list.Element), order: list.New()}
}

// get returns the value of key and marks it used.
func (t *table[V]) get(key string) (V, bool) {
	if e, ok := t.items[key]; ok {
		t.order.MoveToFront(e)
		return e.Value.(*entry[V]).val, true
	}
	var zero V
	return zero, false
}

// peek returns the value of key without marking it used.
func (t *table[V]) peek(key string) (V, bool) {
	if e, ok := t.items[key]; ok {
		return e.Value.(*entry[V]).val, true
	}
	var zero V
	return zero, false
}

// put stores val under key (marked used). When the table is full it makes
// room: first it drops expired entries from the least recently used end
// (entries are touched when they change, so the expired ones gather
// there), then, if it is still full, the least recently used entry that
// pinned does not hold on to (looking at a few only; when all of those are
// pinned the table grows by one rather than lose state in use). It returns
// how many live entries it evicted.
func (t *table[V]) put(key string, val V, expired, pinned func(V) bool) (evicted int) {
	if e, ok := t.items[key]; ok {
		e.Value.(*entry[V]).val = val
		t.order.MoveToFront(e)
		return 0
	}
	for len(t.items) >= t.max {
		e := t.order.Back()
		if e == nil || !expired(e.Value.(*entry[V]).val) {
			break
		}
		t.remove(e.Value.(*entry[V]).key)
	}
	for len(t.items) >= t.max {
		var victim *entry[V]
		e := t.order.Back()
		for i := 0; e != nil && i < 8; i, e = i+1, e.Prev() {
			if en := e.Value.(*entry[V]); !pinned(en.val) {
				victim = en
				break
			}
		}
		if victim == nil {
			break
		}
		t.remove(victim.key)
		evicted++
	}
	t.items[key] = t.order.PushFront(&entry[V]{key: key, val: val})
	return evicted
}

// sweep drops every expired entry.
func (t *table[V]) sweep(expired func(V) bool) {
	for e := t.order.Back(); e != nil; {
		prev := e.Prev()
		if en := e.Value.(*entry[V]); expired(en.val) {
			t.remove(en.key)
		}
		e = prev
	}
}

func (t *table[V]) remove(key string) {
	if e, ok := t.items[key]; ok {
		t.order.Remove(e)
		delete(t.items, key)
	}
}

func (t *table[V]) len() int { return len(t.items) }
