package storage

import (
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mapped-file trimming.
//
// Badger v4 reads its value logs, memtable logs and tables through shared
// mappings (z.MmapFile, MAP_SHARED) and writes its memtable logs the same
// way (memcpy); its value logs and new tables Homing's copy of badger
// writes with pwrite(2) and pwritev(2) (third_party/badger/HOMING.md), so
// their pages are mapped only once they are read. Every page written
// through a mapping or read stays mapped, and so counts in the process's
// resident set, until the file is closed:
// a node that had stored 400 MB of small bodies (queue and mailbox copies)
// showed 1.27 GB of mapped files in its RSS (`make bench-scale`, 100,000
// accounts, before the value logs were written with pwrite). The
// data are the kernel's page cache either way — Postfix's queue files are
// too, and never count in its RSS — but a resident set that grows with the
// bytes stored is what an administrator's memory limit (a cgroup, an OOM
// score) sees and kills.
//
// A MapTrimmer keeps that part bounded by a configured cache: when the
// process's RssFile (/proc/self/status) exceeds the budget beyond what it
// was when the trimmer was made (the program's own text, ~20 MB), it advises
// MADV_PAGEOUT (Linux 5.4) on every mapping of a value log (*.vlog) or
// memtable log (*.mem) under the stores' directories, and, only if that
// was not enough, on the tables (*.sst: written through a mapping too,
// and their indexes and blocks are read on every lookup, so they come
// second). The kernel then unmaps those pages (the dirty bit moves to the
// page cache: syncfs and badger's own syncs still write them) and frees
// the clean ones; the next access faults them in again from the page
// cache or the disk.
//
// MADV_PAGEOUT, not MADV_DONTNEED: the mappings are read from
// /proc/self/maps and badger may unmap a file (a value log collected, an
// idle partition closed) before the advice is given; if the Go runtime
// then mapped its heap at that address, DONTNEED would zero live memory,
// while PAGEOUT of anonymous memory on a machine without swap does
// nothing, and with swap only swaps.

// DefaultMapCache is the budget for mapped files when none is configured.
const DefaultMapCache = 64 << 20

// MapTrimmer bounds the resident pages of the stores' mapped logs.
type MapTrimmer struct {
	budget int64
	base   int64    // RssFile when the trimmer was made
	dirs   []string // cleaned absolute store directories, each ending in "/"
	every  time.Duration
	log    *slog.Logger

	trims   atomic.Int64 // rounds that advised
	advised atomic.Int64 // bytes of mappings advised, summed over rounds

	once sync.Once
	stop chan struct{}
	done chan struct{}
}

// MapTrimConfig configures a MapTrimmer.
type MapTrimConfig struct {
	// Budget is how far RssFile (bytes) may grow beyond what it is when
	// the trimmer is made before the trimmer acts; 0 means
	// DefaultMapCache.
	Budget int64
	// Dirs are the directories whose value and memtable logs are trimmed
	// (the queue's, the journal's, the account store's root).
	Dirs []string
	// Every is how often RssFile is looked at; 0 means one second.
	Every  time.Duration
	Logger *slog.Logger
}

// NewMapTrimmer returns a trimmer; Start runs it.
func NewMapTrimmer(cfg MapTrimConfig) *MapTrimmer {
	t := &MapTrimmer{budget: cfg.Budget, every: cfg.Every, log: cfg.Logger,
		stop: make(chan struct{}), done: make(chan struct{})}
	if t.budget <= 0 {
		t.budget = DefaultMapCache
	}
	if t.every <= 0 {
		t.every = time.Second
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.base, _ = rssFile()
	for _, d := range cfg.Dirs {
		if abs, err := filepath.Abs(d); err == nil {
			t.dirs = append(t.dirs, strings.TrimSuffix(filepath.Clean(abs), "/")+"/")
		}
	}
	return t
}

// Start looks at RssFile every cfg.Every until Close.
func (t *MapTrimmer) Start() {
	go func() {
		defer close(t.done)
		tick := time.NewTicker(t.every)
		defer tick.Stop()
		for {
			select {
			case <-t.stop:
				return
			case <-tick.C:
				if _, err := t.Trim(false); err != nil {
					t.log.Warn("mapped-file trimming stopped", "err", err)
					return
				}
			}
		}
	}()
}

// Close stops the trimmer started by Start.
func (t *MapTrimmer) Close() {
	t.once.Do(func() { close(t.stop) })
	select {
	case <-t.done:
	case <-time.After(5 * time.Second):
	}
}

// Stats are the trimmer's counters: the rounds that advised and the bytes
// of mappings advised in all.
func (t *MapTrimmer) Stats() (rounds, bytes int64) { return t.trims.Load(), t.advised.Load() }

// Trim advises the stores' log mappings when RssFile is over the budget
// (beyond the base)
// (or always, with force) and returns the bytes of mappings advised. An
// error means trimming cannot work here (no /proc, a kernel without
// MADV_PAGEOUT) and should stop.
func (t *MapTrimmer) Trim(force bool) (int64, error) {
	if !force {
		rss, err := rssFile()
		if err != nil {
			return 0, err
		}
		if rss <= t.base+t.budget {
			return 0, nil
		}
	}
	n, err := pageOutMappings(t.logs)
	if err == nil {
		var rss int64
		if rss, err = rssFile(); err == nil && (force || rss > t.base+t.budget) {
			var m int64
			m, err = pageOutMappings(t.tables)
			n += m
		}
	}
	if n > 0 {
		t.trims.Add(1)
		t.advised.Add(n)
	}
	return n, err
}

// logs reports whether a mapped file is a value log or memtable log
// under one of the trimmer's directories.
func (t *MapTrimmer) logs(path string) bool {
	return (strings.HasSuffix(path, ".vlog") || strings.HasSuffix(path, ".mem")) && t.under(path)
}

// tables reports whether a mapped file is a table under one of the
// trimmer's directories.
func (t *MapTrimmer) tables(path string) bool {
	return strings.HasSuffix(path, ".sst") && t.under(path)
}

func (t *MapTrimmer) under(path string) bool {
	for _, d := range t.dirs {
		if strings.HasPrefix(path, d) {
			return true
		}
	}
	return false
}
