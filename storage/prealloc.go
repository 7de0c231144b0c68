package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Allocation ahead of badger's writes.
//
// badger writes its value log (NNNNNN.vlog) and each memtable's WAL
// (NNNNN.mem) through a shared mapping of a file it ftruncated to twice
// ValueLogFileSize and twice MemTableSize: holes, whose pages the
// filesystem allocates when they are first touched, and a page it cannot
// allocate is SIGBUS (space.go). So before each transaction the committer
// allocates (fallocate(2), the file's size unchanged) the bytes the
// transaction may write into the current value log and WAL, and a chunk
// beyond, from the end of what was allocated so far: an allocation that
// fails is an ErrNoSpace of that transaction, before badger sees it, and
// what badger then writes lands on allocated pages. Only what is written
// soon is allocated (about a chunk per file and DB), not the whole mapping:
// sixteen partitions and a queue with the full mappings allocated would
// hold 2.4 GiB of an empty node's disk.
//
// How much a transaction writes is bounded from its batches (bounds): each
// entry is badger's header (at most 22 bytes), the key with its 8-byte
// version, the value (or, for a value of the threshold or more, a 12-byte
// pointer in the WAL and the value in the value log) and a 4-byte CRC;
// each transaction adds one entry of its own. badger rotates files by
// itself: a value log when a write took it past ValueLogFileSize (after
// the write, so the next one starts a new file), a memtable when it is
// full (before the write that finds it full, which then lands in the new
// WAL, not allocated yet: its bytes are claimed from the free space
// instead). After each transaction the next file names are looked at; a
// new file is allocated ahead at once. Value-log GC rewrites through
// badger's own write path: GC allocates ahead for a whole file's worth
// before it runs.
//
// A filesystem that cannot preallocate (fallocate unsupported) is left to
// the free-space claims alone (logged once).

// errNoPrealloc: the filesystem cannot preallocate.
var errNoPrealloc = errors.New("storage: the filesystem cannot preallocate")

const (
	// preallocChunk is how far beyond the next write a file is allocated.
	preallocChunk = 256 << 10
	// pageSlack covers a file's header, the zeroed entry badger writes
	// after the last one, and rounding to pages.
	pageSlack = 16 << 10
	// entryOverhead is badger's header (22 bytes at most), the key's
	// version (8) and the CRC (4) of one entry.
	entryOverhead = 22 + 8 + 4
	// txnOverhead is the entry badger adds to each transaction.
	txnOverhead = 128
	// vptrBytes is a value pointer's size in the WAL.
	vptrBytes = 12
)

// aheadFile is one file badger writes through a mapping.
type aheadFile struct {
	ext   string // ".vlog" or ".mem"
	width int    // digits of the file id in the name
	fid   int    // the current file, -1 when there is none
	// written bounds the bytes badger wrote into it; alloc is how many
	// bytes from offset 0 are allocated; size is the mapping's size.
	written, alloc, size int64
}

func (f *aheadFile) path(dir string, fid int) string {
	return filepath.Join(dir, fmt.Sprintf("%0*d%s", f.width, fid, f.ext))
}

// prealloc allocates ahead of one DB's writes.
type prealloc struct {
	dir string
	log *slog.Logger

	mu        sync.Mutex
	off       bool // fallocate unsupported here
	vlog, wal aheadFile
	// imm are the WALs rotated out and not flushed yet (fid -> bound of
	// their bytes): the flushes to come write about as much. pending is
	// their sum with the current WAL's, for DB.headroom (read without
	// the lock: a claim of the free space asks for it).
	imm     map[int]int64
	pending atomic.Int64
}

func newPrealloc(dir string, vlogSize, walSize int64, log *slog.Logger) *prealloc {
	p := &prealloc{dir: dir, log: log, imm: map[int]int64{},
		vlog: aheadFile{ext: ".vlog", width: 6, fid: -1, size: vlogSize},
		wal:  aheadFile{ext: ".mem", width: 5, fid: -1, size: walSize}}
	entries, _ := os.ReadDir(dir)
	mems := map[int]int64{}
	for _, e := range entries {
		name := e.Name()
		for _, f := range []*aheadFile{&p.vlog, &p.wal} {
			id, err := strconv.Atoi(strings.TrimSuffix(name, f.ext))
			if !strings.HasSuffix(name, f.ext) || err != nil {
				continue
			}
			f.fid = max(f.fid, id)
			if f == &p.wal {
				if fi, err := e.Info(); err == nil {
					mems[id] = min(fi.Size(), walSize/2+walSize/10)
				}
			}
		}
	}
	// badger.Open made a new value log and a new WAL (the highest ids):
	// only their headers are written. Older WALs are memtables replayed
	// at open, to be flushed.
	for id, n := range mems {
		if id != p.wal.fid {
			p.imm[id] = n
		}
	}
	for _, f := range []*aheadFile{&p.vlog, &p.wal} {
		f.written = pageSlack
	}
	// Nothing is allocated before the first write: an idle DB costs no
	// space, and a start on a full disk opens what it can.
	p.sumLocked()
	return p
}

// sumLocked updates pending.
func (p *prealloc) sumLocked() {
	n := p.wal.written
	for _, b := range p.imm {
		n += b
	}
	p.pending.Store(n)
}

// needLocked is how many bytes must still be allocated (or, beyond the
// mapping, grown into holes) for a write of vb bytes to the value log and
// wb to the WAL.
func (p *prealloc) needLocked(vb, wb int64) int64 {
	p.capLocked()
	var n int64
	for _, x := range []struct {
		f *aheadFile
		b int64
	}{{&p.vlog, vb}, {&p.wal, wb}} {
		if x.f.fid < 0 {
			continue
		}
		target := x.f.written + x.b + pageSlack
		if target > x.f.size {
			n += target - x.f.size // badger grows the file: holes
		}
		if !p.off && target > x.f.alloc {
			n += min(x.f.size, target+preallocChunk) - x.f.alloc
		}
	}
	return n
}

// ensureLocked allocates what needLocked counts (but the growth beyond the
// mapping, which badger makes itself).
func (p *prealloc) ensureLocked(vb, wb int64) error {
	if p.off {
		return nil
	}
	for _, x := range []struct {
		f *aheadFile
		b int64
	}{{&p.vlog, vb}, {&p.wal, wb}} {
		f := x.f
		if f.fid < 0 {
			continue
		}
		target := f.written + x.b + pageSlack
		if target <= f.alloc {
			continue // allocated already: most writes
		}
		end := min(f.size, target+preallocChunk)
		if end <= f.alloc {
			continue
		}
		err := fallocate(f.path(p.dir, f.fid), f.alloc, end-f.alloc)
		switch {
		case err == nil:
			f.alloc = end
		case errors.Is(err, errNoPrealloc):
			p.off = true
			p.log.Warn("storage: this filesystem cannot preallocate (fallocate); a full disk is caught by the free-space checks only", "dir", p.dir)
			return nil
		case errors.Is(err, os.ErrNotExist):
			// Not there (yet): nothing to allocate.
		case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
			return fmt.Errorf("%w: allocating %s of %s: %v", ErrNoSpace, FormatBytes(end-f.alloc), f.path(p.dir, f.fid), err)
		default:
			return fmt.Errorf("storage: allocating %s: %w", f.path(p.dir, f.fid), err)
		}
	}
	return nil
}

// wrote records a committed transaction of vb and wb bytes and follows
// badger's rotations: a new file found is allocated ahead at once.
func (p *prealloc) wrote(vb, wb int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.vlog.written += vb
	p.wal.written += wb
	p.followLocked(wb)
}

// capLocked keeps the bounds sound but tight: badger starts a new value
// log once a write took the current one past ValueLogFileSize (half the
// mapping), and a new memtable once its WAL reached MemTableSize (half
// its mapping): before a write, the file holds no more than that. (The
// bounds overestimate; without the cap they would run past the mapping.)
func (p *prealloc) capLocked() {
	for _, f := range []*aheadFile{&p.vlog, &p.wal} {
		f.written = min(f.written, f.size/2+pageSlack)
	}
}

// followLocked looks for the files badger created since the last look. A
// WAL rotated during the last write took that write's wb bytes.
func (p *prealloc) followLocked(wb int64) {
	rotated := false
	// badger starts a new value log only after a write took the current
	// one past ValueLogFileSize (half the mapping), which the bound
	// follows; a memtable may be full (its arena) well before its WAL
	// is: that one is looked for after every write.
	for p.vlog.fid >= 0 && p.vlog.written > p.vlog.size/2 && exists(p.vlog.path(p.dir, p.vlog.fid+1)) {
		p.vlog.fid++
		p.vlog.written, p.vlog.alloc = pageSlack, 0
		rotated = true
	}
	for p.wal.fid >= 0 && exists(p.wal.path(p.dir, p.wal.fid+1)) {
		p.imm[p.wal.fid] = p.wal.written
		p.wal.fid++
		p.wal.written, p.wal.alloc = pageSlack+wb, 0
		rotated = true
	}
	if rotated {
		if err := p.ensureLocked(0, 0); err != nil {
			p.log.Debug("storage: allocating ahead in a new file", "err", err)
		}
	}
	p.sumLocked()
}

// gcEnd follows a value-log GC run, which wrote through badger's own
// write path, not allocated ahead: when it rewrote a file, up to half a
// file (GC rewrites files that are at least half garbage) went to the
// value log and as much at most to the WAL.
func (p *prealloc) gcEnd(rewrote bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rewrote {
		p.vlog.written += p.vlog.size / 4
		p.wal.written += p.vlog.size / 4
		// GC may have started a new value log: look for it whatever
		// the bound says.
		for p.vlog.fid >= 0 && exists(p.vlog.path(p.dir, p.vlog.fid+1)) {
			p.vlog.fid++
			p.vlog.written, p.vlog.alloc = pageSlack, 0
		}
	}
	p.followLocked(0)
	if err := p.ensureLocked(0, 0); err != nil {
		p.log.Debug("storage: allocating ahead after value-log GC", "err", err)
	}
}

// unflushed bounds the bytes of the memtables not flushed yet (their
// flushes write about as much into new tables).
func (p *prealloc) unflushed() int64 { return p.pending.Load() }

// prune forgets the WALs badger deleted once their memtable was flushed.
func (p *prealloc) prune() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.imm {
		if !exists(p.wal.path(p.dir, id)) {
			delete(p.imm, id)
		}
	}
	p.sumLocked()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// writeZeros writes n zero bytes to f.
func writeZeros(f *os.File, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// bounds is what the batches of group write at most into the value log
// (vb) and the WAL (wb), for values at or above threshold going to the
// value log.
func bounds(group []*pending, threshold int64) (vb, wb int64) {
	for _, p := range group {
		for _, o := range p.b.ops {
			k, v := int64(len(o.key))+entryOverhead, int64(len(o.value))
			if !o.del && v >= threshold {
				vb += k + v
				wb += k + vptrBytes
			} else {
				wb += k + v
			}
		}
	}
	return vb, wb + txnOverhead
}
