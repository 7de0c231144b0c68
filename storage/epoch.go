package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The epoch: a fencing token per database directory.
//
// dir/homing.epoch holds a number that every successful open increments
// (written to a temporary file, synced, renamed into place and the
// directory synced, all before badger opens, so before the DB serves). The
// open remembers its number, and the committer reads the file again in
// every group-commit round: before the round's transaction is written
// (a newer number and nothing of the round reaches the disk) and after it
// is durable, before any caller is told (a newer number and nobody is
// told it was stored). A newer number, or a file that cannot be read,
// fails the DB at once (ErrFenced, ErrFailed): the open lost its lock
// somewhere (an NFS lease that expired while its host was cut off) and
// another open has the directory now.
//
// The file is opened anew for each read, so that a network filesystem's
// close-to-open consistency shows another host's rename; a descriptor kept
// open would keep reading the old inode.

// epochFileName is the epoch's file inside every database directory.
const epochFileName = "homing.epoch"

// epochRecord is the content of the epoch file.
type epochRecord struct {
	Epoch  uint64    `json:"epoch"`
	Owner  string    `json:"owner,omitempty"` // Options.Owner of the open that wrote it
	PID    int       `json:"pid,omitempty"`
	Host   string    `json:"host,omitempty"`
	Opened time.Time `json:"opened"`
}

// readEpoch reads dir's epoch record; a directory without one (never
// opened by a Homing with epochs) has epoch 0.
func readEpoch(dir string) (epochRecord, error) {
	var r epochRecord
	b, err := os.ReadFile(filepath.Join(dir, epochFileName))
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("storage: %s: reading the epoch: %w", dir, err)
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Epoch == 0 {
		return r, fmt.Errorf("storage: %s: the epoch file %s is damaged (%q)", dir, epochFileName, b)
	}
	return r, nil
}

// writeEpoch writes r as dir's epoch record, durably, and returns the
// file's bytes.
func writeEpoch(dir string, r epochRecord) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(dir, epochFileName+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("storage: %s: writing the epoch: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, epochFileName))
	}
	if err != nil {
		return nil, fmt.Errorf("storage: %s: writing the epoch: %w", dir, err)
	}
	return b, syncDir(dir)
}

// bumpEpoch increments dir's epoch (the caller holds its lock) and returns
// the new one and the bytes of the file it wrote.
func bumpEpoch(dir, owner string) (uint64, []byte, error) {
	r, err := readEpoch(dir)
	if err != nil {
		return 0, nil, err
	}
	host, _ := os.Hostname()
	next := epochRecord{Epoch: r.Epoch + 1, Owner: owner, PID: os.Getpid(), Host: host, Opened: time.Now().UTC()}
	written, err := writeEpoch(dir, next)
	if err != nil {
		return 0, nil, err
	}
	return next.Epoch, written, nil
}

// maxEpochFile is the most of the epoch file the fast check reads: a
// record is ~150 bytes.
const maxEpochFile = 1024

// sameEpochFile reports whether the file at path holds exactly want
// (opened anew, for close-to-open consistency); false when it cannot be
// read or differs, and the caller reads it the slow way.
func sameEpochFile(path string, want []byte) bool {
	if len(want) == 0 || len(want) >= maxEpochFile {
		return false
	}
	var buf [maxEpochFile]byte
	n, ok := readSmallFile(path, buf[:])
	return ok && bytes.Equal(buf[:n], want)
}

// Opened reports whether partition id of the store has been opened before
// (its directory has an epoch): its data is in this store. A static
// cluster tells a backend that holds a partition's data from one that
// merely claims it by this (cluster/static.go).
func (s *AccountStore) Opened(id int) bool {
	r, err := readEpoch(s.dir(id))
	return err == nil && r.Epoch > 0
}
