package node

import (
	"runtime/debug"
	"sync"
	"time"
)

// Returning memory after the partitions close.
//
// A partition that closes its data (idle, or moved to another node) drops
// badger's memtable arenas and caches, but Go gives the pages back to the
// kernel only toward the heap goal of its last collection, and an idle
// node hardly allocates, so hardly collects: after 100,000 messages to
// 100,000 accounts the RSS stayed at 402 MB with a live heap of 60 MB
// (`bin/homing-load --n 100000 --accounts 100000`, partitions idle after
// 10 s; a forced collection let the scavenger bring it to 218 MB within
// 30 s). So a close schedules debug.FreeOSMemory (a collection, then every
// free page returned) a few seconds later, at most once a minute: a few
// milliseconds of CPU, when the node has just become quieter.
type memoryReturn struct {
	delay, every time.Duration
	free         func() // debug.FreeOSMemory

	mu      sync.Mutex
	timer   *time.Timer
	last    time.Time
	stopped bool
}

func newMemoryReturn() *memoryReturn {
	return &memoryReturn{delay: 5 * time.Second, every: time.Minute, free: debug.FreeOSMemory}
}

// closed notes that a partition closed its data.
func (m *memoryReturn) closed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped || m.timer != nil {
		return
	}
	wait := m.delay
	if next := time.Until(m.last.Add(m.every)); next > wait {
		wait = next
	}
	m.timer = time.AfterFunc(wait, m.run)
}

func (m *memoryReturn) run() {
	m.mu.Lock()
	m.timer = nil
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.last = time.Now()
	m.mu.Unlock()
	m.free()
}

// stop cancels a pending return (at shutdown).
func (m *memoryReturn) stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	return nil
}
