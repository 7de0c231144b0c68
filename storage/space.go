package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Free space.
//
// A mail server must meet a full disk with a temporary refusal, never with
// a crash: Postfix's smtpd answers "452 4.3.1 Insufficient system storage"
// below queue_minfree and keeps running, draining its queue. badger makes
// that harder than write(2) does: its value log and its memtables' WALs are
// files it extends with ftruncate (holes) and writes through a shared
// memory mapping, and so are the tables it writes when it flushes a
// memtable or compacts. A page of a hole that the filesystem cannot
// allocate is not an error of a call: the store to the page is SIGBUS, and
// the process dies (on tmpfs even reading a hole allocates a page; badger
// does that when it replays its last files at open). Checked here: a node
// on a 64 MiB tmpfs took 256 KiB messages until the disk was full, its
// body files failing with ENOSPC (451, an ERROR line per message), then
// died with SIGBUS in valueLog.write on the next small message, and died
// again in badger.Open (logFile.iterate) on every restart until space was
// freed. badger v4 has no way to avoid the mappings (its FileIO loading
// modes went with v3's WAL rework, dgraph-io/badger#1555). Homing's copy
// of badger now writes the value log and new tables with pwrite(2) and
// pwritev(2) (third_party/badger/HOMING.md), where a full disk is ENOSPC
// from the call; the memtables' WALs are still written through mappings,
// so everything below stays.
//
// So a Space watches one filesystem (statfs(2)) for every store on it, at
// three levels:
//
//   - MinFree (--min-free-space) is admission: below it new mail is
//     refused (Admit: SMTP MAIL FROM and DATA answer 452 4.3.1, Local
//     Delivery answers 452 4.3.1 and the message stays queued), the
//     readiness check fails, and one log line says so (one more when it
//     recovers). Mail already accepted is still delivered and deleted.
//   - The floor is what badger needs for its own writes that nobody asks
//     for: the flush of every memtable not yet flushed, a compaction of
//     the lower levels, the headers of new files (DB.headroom). Writes of
//     the stores keep above it: a body file stops being written (and is
//     removed) when the next piece would cut into the floor plus room for
//     the records that make bodies durable (metaMargin), a transaction
//     that adds data is refused before badger sees it when it would cut
//     into the floor. Records that only change or delete (the queue's
//     results, a deleted message) may use the floor, down to the last
//     bytes, since they are what frees space. A refused write is an error
//     wrapping ErrNoSpace (temporary, not sticky: the DB keeps working).
//   - Every transaction's pages are allocated before badger writes them
//     (prealloc.go: fallocate(2) ahead of the write offset of the current
//     value log and WAL), so the write itself cannot fault; an allocation
//     that fails is ErrNoSpace, before the transaction.
//
// And a reserve file (Reserve bytes, fallocated, on each store's
// filesystem, like CockroachDB's emergency ballast): it is removed when the
// free space falls under the floor anyway (another program filled the
// disk, or a node starts on a full one), so that badger's own writes and a
// start find room, and made again once there is room for it above
// MinFree. An operator may delete it by hand to get its space at once.
//
// statfs answers are kept for spaceTTL; the bytes of writes in flight
// (claimed before they start) and of writes done since the answer count
// as used, so that concurrent writers do not all pass one check.

// metaMargin is the room above the floor that body files leave for the
// records that reference them and for the queue's results.
const metaMargin = 4 << 20

// spaceTTL is how long a statfs answer is used.
const spaceTTL = 50 * time.Millisecond

// DefaultSpaceInterval is how often a Space looks at its filesystem when
// nothing asks (for the log, the metric, the reserve file and recovery).
const DefaultSpaceInterval = time.Second

// SpaceConfig configures a Space. The zero value watches nothing but the
// floor: no admission limit, no reserve file.
type SpaceConfig struct {
	// Store names the first store on the filesystem (AddStore names
	// more), for the logs: "queue", "accounts".
	Store string
	// MinFree is the admission limit in bytes (--min-free-space).
	MinFree int64
	// Reserve is the size of the reserve file, ReservePath its name (both
	// needed for one).
	Reserve     int64
	ReservePath string
	// Interval is the pause between looks; 0 means DefaultSpaceInterval.
	Interval time.Duration
	Logger   *slog.Logger
	// Statfs replaces statfs(2) of the directory (tests): the bytes
	// available to the process and the filesystem's size.
	Statfs func() (avail, total int64, err error)
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Space is the free-space guard of one filesystem. It is safe for
// concurrent use.
type Space struct {
	dir    string
	cfg    SpaceConfig
	log    *slog.Logger
	statfs func() (int64, int64, error)
	now    func() time.Time
	dev    uint64
	hasDev bool

	mu      sync.Mutex
	stores  []string
	dbs     map[*DB]struct{}
	avail   int64
	total   int64
	statErr error
	at      time.Time // of avail; zero: never asked
	// inflight is the bytes claimed by writes not done yet; written the
	// bytes of writes done since avail was asked (not in it, or maybe
	// not: counted until the next answer, which has them).
	inflight, written int64
	low               bool // below MinFree: admission refused
	short             bool // below the floor
	reserveHeld       bool

	startOnce, closeOnce sync.Once
	started              atomic.Bool
	stop                 chan struct{}
	done                 chan struct{}
}

// NewSpace returns the guard of the filesystem that holds dir (created if
// needed). When the reserve file exists and the free space is below the
// reserve's size, it is removed at once: a node starting on a full disk
// needs room to open its stores.
func NewSpace(dir string, cfg SpaceConfig) (*Space, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: space: %w", err)
	}
	s := &Space{dir: dir, cfg: cfg, log: cfg.Logger, statfs: cfg.Statfs, now: cfg.Now,
		dbs: map[*DB]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.statfs == nil {
		s.statfs = func() (int64, int64, error) { return statfs(dir) }
	}
	s.dev, s.hasDev = deviceOf(dir)
	if cfg.Store != "" {
		s.stores = []string{cfg.Store}
	}
	if s.cfg.Interval <= 0 {
		s.cfg.Interval = DefaultSpaceInterval
	}
	if s.cfg.Reserve <= 0 || s.cfg.ReservePath == "" {
		s.cfg.Reserve, s.cfg.ReservePath = 0, ""
	}
	if s.cfg.ReservePath != "" {
		if fi, err := os.Stat(s.cfg.ReservePath); err == nil && fi.Mode().IsRegular() {
			s.reserveHeld = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
	if s.reserveHeld && s.statErr == nil && s.avail < s.cfg.Reserve {
		s.releaseReserveLocked("starting with less free space than the reserve")
	}
	return s, nil
}

// Dir returns the directory the Space was made for.
func (s *Space) Dir() string { return s.dir }

// Covers reports whether dir is on this Space's filesystem.
func (s *Space) Covers(dir string) bool {
	if !s.hasDev {
		return false
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false
	}
	dev, ok := deviceOf(dir)
	return ok && dev == s.dev
}

// AddStore names a store on this filesystem (in logs, statuses and
// metrics: "queue", "accounts").
func (s *Space) AddStore(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.stores, name) {
		s.stores = append(s.stores, name)
	}
}

func (s *Space) register(db *DB) {
	s.mu.Lock()
	s.dbs[db] = struct{}{}
	s.mu.Unlock()
}

func (s *Space) unregister(db *DB) {
	s.mu.Lock()
	delete(s.dbs, db)
	s.mu.Unlock()
}

// refreshLocked asks statfs again and updates the state (s.mu held).
func (s *Space) refreshLocked() {
	avail, total, err := s.statfs()
	s.at, s.written = s.now(), 0
	if err != nil {
		if s.statErr == nil {
			s.log.Warn("storage: statfs failed; the free-space guard cannot see this filesystem", "dir", s.dir, "err", err)
		}
		s.statErr = err
		return
	}
	if s.statErr != nil {
		s.log.Info("storage: statfs works again", "dir", s.dir)
	}
	s.statErr, s.avail, s.total = nil, avail, total
	s.updateLocked()
}

// claimsLocked is what is taken from avail: the writes in flight and
// those done since statfs answered.
func (s *Space) claimsLocked() int64 { return s.inflight + s.written }

// refreshIfStale refreshes when the last answer is older than spaceTTL,
// and reports whether it did.
func (s *Space) refreshIfStale() bool {
	if s.at.IsZero() || s.now().Sub(s.at) >= spaceTTL {
		s.refreshLocked()
		return true
	}
	return false
}

// floorLocked is the floor: what the DBs on this filesystem need for
// their own writes.
func (s *Space) floorLocked() int64 {
	var f int64
	for db := range s.dbs {
		f += db.headroom()
	}
	return f
}

// admitLimitLocked is the free space below which admission refuses: the
// configured MinFree, but never less than the floor, the room body files
// keep above it, and as much again for the messages in flight when
// admission closes (a smaller --min-free-space could not be kept: bodies
// would be refused at the end of DATA instead of MAIL FROM).
func (s *Space) admitLimitLocked() int64 {
	return max(s.cfg.MinFree, s.floorLocked()+2*metaMargin)
}

// hysteresis is how far above the admission limit the free space must get
// before admission opens again, so that a disk hovering at the limit does
// not flap (and log) with every message.
func (s *Space) hysteresisLocked() int64 {
	return max(1<<20, s.cfg.MinFree/32)
}

// lowLocked updates low from the free space (what statfs said less what
// was claimed since), logging a transition, and returns it: admission
// and the state (the log, readiness, the metric) agree.
func (s *Space) lowLocked(limit, floor int64) bool {
	free := s.avail - s.claimsLocked()
	switch {
	case !s.low && free < limit && s.written > 0:
		// Decided on a fresh answer, not on the estimate of what was
		// written since statfs answered: it counts more than the disk
		// took (a body linked into a mailbox, pages written again), and
		// the state would flip back at the next refresh (seen on a 96 MiB
		// tmpfs: 1.7 MiB of 6.5 MiB counted that the disk never took).
		s.refreshLocked()
		return s.lowLocked(s.admitLimitLocked(), s.floorLocked())
	case !s.low && free < limit:
		s.low = true
		s.log.Warn("storage: free space below the limit: new mail is refused (452 4.3.1) until space is freed",
			s.attrs(limit, floor)...)
	case s.low && free >= limit+s.hysteresisLocked():
		s.low = false
		s.log.Info("storage: free space above the limit again: new mail is accepted", s.attrs(limit, floor)...)
	}
	return s.low
}

// updateLocked updates low and short from avail, logging transitions, and
// removes or makes the reserve file.
func (s *Space) updateLocked() {
	limit, floor := s.admitLimitLocked(), s.floorLocked()
	s.lowLocked(limit, floor)
	switch {
	case !s.short && s.avail < floor:
		s.short = true
		s.log.Error("storage: free space below what the stores need for their own writes: writes refused",
			s.attrs(limit, floor)...)
	case s.short && s.avail >= floor+metaMargin:
		s.short = false
		s.log.Info("storage: free space is enough for the stores' own writes again", s.attrs(limit, floor)...)
	}
	if s.reserveHeld && s.avail < floor {
		s.releaseReserveLocked("free space below the floor")
	}
	if !s.reserveHeld && s.cfg.ReservePath != "" && s.avail >= limit+s.cfg.Reserve+s.hysteresisLocked() {
		s.makeReserveLocked()
	}
}

func (s *Space) attrs(limit, floor int64) []any {
	return []any{"stores", strings.Join(s.stores, ","), "dir", s.dir, "free", FormatBytes(s.avail - s.claimsLocked()),
		"minFree", FormatBytes(limit), "floor", FormatBytes(floor)}
}

func (s *Space) releaseReserveLocked(why string) {
	if err := os.Remove(s.cfg.ReservePath); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Error("storage: removing the space reserve", "file", s.cfg.ReservePath, "err", err)
		return
	}
	s.reserveHeld = false
	s.log.Warn("storage: released the space reserve: "+why, "file", s.cfg.ReservePath,
		"size", FormatBytes(s.cfg.Reserve), "free", FormatBytes(s.avail))
	if avail, total, err := s.statfs(); err == nil {
		s.avail, s.total, s.at = avail, total, s.now()
	}
}

func (s *Space) makeReserveLocked() {
	tmp := s.cfg.ReservePath + ".tmp"
	err := allocateFile(tmp, s.cfg.Reserve)
	if err == nil {
		err = os.Rename(tmp, s.cfg.ReservePath)
	}
	if err != nil {
		_ = os.Remove(tmp)
		s.log.Warn("storage: making the space reserve", "file", s.cfg.ReservePath, "err", err)
		if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
			s.cfg.ReservePath = "" // not again: this directory cannot have one
		}
		return
	}
	s.reserveHeld = true
	s.avail -= s.cfg.Reserve
	s.log.Info("storage: space reserve in place", "file", s.cfg.ReservePath, "size", FormatBytes(s.cfg.Reserve))
}

// noSpace is the error of a refusal.
func (s *Space) noSpace(what string, need, limit int64) error {
	stores := strings.Join(s.stores, ",")
	if stores == "" {
		stores = s.dir
	}
	return fmt.Errorf("%w: %s: %s on the %s filesystem (%s free, %s needed above %s)", ErrNoSpace, what, stores, s.dir,
		FormatBytes(s.avail-s.claimsLocked()), FormatBytes(need), FormatBytes(limit))
}

// Admit says whether new mail of size bytes (0: unknown) may come in now:
// nil, or an error wrapping ErrNoSpace when the free space is below
// MinFree (or would be, with size bytes more).
func (s *Space) Admit(size int64) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshIfStale()
	if s.statErr != nil {
		return nil // blind: badger's own checks are the last word
	}
	limit := s.admitLimitLocked()
	if s.lowLocked(limit, s.floorLocked()) || s.avail-s.claimsLocked()-max(size, 0) < limit {
		return s.noSpace("new mail refused", max(size, 0), limit)
	}
	return nil
}

// claim takes n bytes from the free space when at least limit stays
// free, refreshing the statfs answer once when the cached one says no.
// The caller releases them once its write is done.
func (s *Space) claim(what string, n, limit int64) error {
	if s == nil || n <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.refreshIfStale() && s.statErr == nil && s.avail-s.claimsLocked()-n < limit {
		s.refreshLocked() // the cached answer says no: ask once more
	}
	if s.statErr != nil {
		return nil
	}
	if s.avail-s.claimsLocked()-n < limit {
		return s.noSpace(what, n, limit)
	}
	s.inflight += n
	return nil
}

// release ends a claim of n bytes whose write is done (or failed): they
// count as written until statfs answers again.
func (s *Space) release(n int64) {
	if s == nil || n <= 0 {
		return
	}
	s.mu.Lock()
	s.inflight -= n
	s.written += n
	s.mu.Unlock()
}

// claimBody claims n bytes for a body file: the floor and metaMargin stay.
// The caller releases them after the write.
func (s *Space) claimBody(n int64) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	limit := s.floorLocked() + metaMargin
	s.mu.Unlock()
	return s.claim("body not written", n, limit)
}

// claimWrite claims n bytes for a transaction: the floor stays, unless
// the transaction only changes or deletes records (maintenance).
func (s *Space) claimWrite(n int64, maintenance bool) error {
	if s == nil {
		return nil
	}
	var limit int64
	if !maintenance {
		s.mu.Lock()
		limit = s.floorLocked()
		s.mu.Unlock()
	}
	return s.claim("write refused", n, limit)
}

// roomFor reports whether n bytes could be claimed above the floor now,
// without claiming them (value-log GC asks before it rewrites).
func (s *Space) roomFor(n int64) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshIfStale()
	return s.statErr != nil || s.avail-s.claimsLocked()-n >= s.floorLocked()
}

// openBytes is the room a DB needs to open: badger writes its LOCK file
// and, through mappings, the headers of a new WAL and value log (and
// replays the last ones: on tmpfs a read of a hole allocates a page).
const openBytes = 256 << 10

// canOpen says whether a DB may be opened on this filesystem now: nil,
// or an error wrapping ErrNoSpace when not even openBytes are free (a
// fault in badger.Open is what that would risk).
func (s *Space) canOpen() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
	if s.statErr == nil && s.avail-s.claimsLocked() < openBytes {
		return s.noSpace("not opened", openBytes, 0)
	}
	return nil
}

// recordBytes is the room canRecord asks for: a few results.
const recordBytes = 64 << 10

// canRecord reports whether a small maintenance write would be taken now.
func (s *Space) canRecord() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshIfStale()
	if s.statErr == nil && s.avail-s.claimsLocked() < recordBytes+pageSlack {
		return s.noSpace("no room to record results", recordBytes, 0)
	}
	return nil
}

// SpaceStatus is what a Space knows now.
type SpaceStatus struct {
	Dir     string   // the directory it watches
	Stores  []string // the stores on the filesystem
	Free    int64    // bytes available (statfs f_bavail)
	Total   int64    // the filesystem's size
	MinFree int64    // the admission limit in force (at least Floor+8 MiB)
	Floor   int64    // what the stores' DBs need for their own writes
	// Low: below MinFree, new mail is refused; Short: below the floor.
	Low, Short bool
	// Reserve is the reserve file's size, ReserveHeld whether it is in
	// place now.
	Reserve     int64
	ReserveHeld bool
	Err         string // statfs failed: the guard is blind
}

// Status returns the current state (asking statfs when the last answer is
// stale).
func (s *Space) Status() SpaceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshIfStale()
	st := SpaceStatus{Dir: s.dir, Stores: slices.Clone(s.stores), Free: s.avail, Total: s.total,
		MinFree: s.admitLimitLocked(), Floor: s.floorLocked(), Low: s.low, Short: s.short,
		Reserve: s.cfg.Reserve, ReserveHeld: s.reserveHeld}
	if s.statErr != nil {
		st.Err = s.statErr.Error()
	}
	return st
}

// Start runs the Space's look at its filesystem every Interval until
// Close: it refreshes the DBs' floors, logs transitions (also without
// traffic: a disk freed by an operator is noticed), and removes or makes
// the reserve file.
func (s *Space) Start() {
	s.startOnce.Do(func() {
		s.started.Store(true)
		go func() {
			defer close(s.done)
			t := time.NewTicker(s.cfg.Interval)
			defer t.Stop()
			for {
				select {
				case <-s.stop:
					return
				case <-t.C:
				}
				s.Tick()
			}
		}()
	})
}

// Tick is one look (Start runs it every Interval; tests call it).
func (s *Space) Tick() {
	s.mu.Lock()
	dbs := make([]*DB, 0, len(s.dbs))
	for db := range s.dbs {
		dbs = append(dbs, db)
	}
	s.mu.Unlock()
	for _, db := range dbs {
		db.refreshHeadroom()
	}
	s.mu.Lock()
	s.refreshLocked()
	s.mu.Unlock()
}

// Close stops the looks started by Start. The reserve file stays.
func (s *Space) Close() error {
	s.closeOnce.Do(func() {
		s.startOnce.Do(func() {}) // no Start after Close
		close(s.stop)
		if s.started.Load() {
			<-s.done
		}
	})
	return nil
}

// FormatBytes is n in binary units for people ("63.9 MiB").
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	for f /= unit; (f >= unit || f <= -unit) && i < len(units)-1; i++ {
		f /= unit
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// ReserveName is the reserve file's name in a store's directory.
const ReserveName = "space-reserve"

// ReservePath is the reserve file of the filesystem of dir.
func ReservePath(dir string) string { return filepath.Join(dir, ReserveName) }
