package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// MaxPartitions is the largest partition count an AccountStore accepts.
const MaxPartitions = 4096

// storeFile records the partition count of an account store root.
const storeFile = "store.json"

// storeMeta is the content of root/store.json.
type storeMeta struct {
	Format     int `json:"format"`
	Partitions int `json:"partitions"`
}

const storeFormat = 1

// AccountStore is a directory of partitions: root/p0000, root/p0001, ...,
// each its own badger DB holding the accounts that mail.PartitionOf hashes
// into it, their aliases and their mailboxes. A partition is opened only
// when asked for (Open), by the one node that owns it; badger's directory
// lock fences every other open.
//
// An AccountStore is safe for concurrent use. It tracks the partitions it
// opened and closes those still open in Close.
type AccountStore struct {
	root string
	n    int
	opt  Options

	mu     sync.Mutex
	open   map[int]*Partition // a nil value: being opened
	closed bool
}

// NewAccountStore prepares root (creating it) for a store of the given
// number of partitions. The count is recorded in root/store.json the first
// time; a later call with a different count fails with a
// *PartitionCountError, since every account would hash elsewhere. No
// partition is opened yet.
func NewAccountStore(root string, partitions int, opt Options) (*AccountStore, error) {
	if root == "" {
		return nil, errors.New("storage: account store: empty root")
	}
	if partitions < 1 || partitions > MaxPartitions {
		return nil, fmt.Errorf("storage: account store: %d partitions, want 1..%d", partitions, MaxPartitions)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("storage: account store: %w", err)
	}
	recorded, err := recordPartitions(root, partitions)
	if err != nil {
		return nil, err
	}
	if recorded != partitions {
		return nil, &PartitionCountError{Root: root, Recorded: recorded, Asked: partitions}
	}
	return &AccountStore{root: root, n: partitions, opt: opt, open: make(map[int]*Partition)}, nil
}

// recordPartitions returns the count recorded in root/store.json, writing n
// there first if there is none. The file is written to a temporary name,
// synced, and linked into place: link never replaces an existing file, so of
// two nodes creating a shared store at once exactly one count wins and the
// other node reads it.
func recordPartitions(root string, n int) (int, error) {
	path := filepath.Join(root, storeFile)
	if got, err := readStoreMeta(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return got, err
	}
	data, err := json.Marshal(storeMeta{Format: storeFormat, Partitions: n})
	if err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(root, storeFile+".tmp*")
	if err != nil {
		return 0, fmt.Errorf("storage: account store: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("storage: account store: write %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return 0, fmt.Errorf("storage: account store: %w", err)
	}
	if err := syncDir(root); err != nil {
		return 0, err
	}
	return readStoreMeta(path)
}

func readStoreMeta(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var m storeMeta
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, fmt.Errorf("storage: account store: %s: %w", path, err)
	}
	if m.Format != storeFormat || m.Partitions < 1 || m.Partitions > MaxPartitions {
		return 0, fmt.Errorf("storage: account store: %s: unsupported format %d or partition count %d",
			path, m.Format, m.Partitions)
	}
	return m.Partitions, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("storage: sync %s: %w", dir, err)
	}
	return nil
}

// Partitions returns the partition count.
func (s *AccountStore) Partitions() int { return s.n }

// Root returns the store's directory.
func (s *AccountStore) Root() string { return s.root }

// dir is the directory of partition id.
func (s *AccountStore) dir(id int) string {
	return filepath.Join(s.root, fmt.Sprintf("p%04d", id))
}

// Open opens partition id (0 <= id < Partitions()), creating it if needed,
// and finishes any account deletion that was interrupted. It fails with an
// error wrapping ErrLocked when the partition is open elsewhere: in this
// store (until that Partition is closed), in another store of this process
// or in another process. It fails with ErrClosed after Close.
func (s *AccountStore) Open(id int) (*Partition, error) {
	if id < 0 || id >= s.n {
		return nil, fmt.Errorf("storage: partition %d out of range [0,%d)", id, s.n)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if _, busy := s.open[id]; busy {
		s.mu.Unlock()
		return nil, fmt.Errorf("storage: partition %d: %w (already open in this store)", id, ErrLocked)
	}
	s.open[id] = nil
	s.mu.Unlock()

	p, err := openPartition(s, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.open, id)
		return nil, err
	}
	if s.closed {
		// Close ran while we opened; it did not see this partition.
		delete(s.open, id)
		return nil, errors.Join(ErrClosed, p.closeDB())
	}
	s.open[id] = p
	return p, nil
}

// forget is called by Partition.Close.
func (s *AccountStore) forget(id int, p *Partition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[id] == p {
		delete(s.open, id)
	}
}

// Close closes every partition still open and makes Open fail with
// ErrClosed. Partitions being opened at that moment are closed by their
// Open. Close is idempotent.
func (s *AccountStore) Close() error {
	s.mu.Lock()
	s.closed = true
	var ps []*Partition
	for _, p := range s.open {
		if p != nil {
			ps = append(ps, p)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
