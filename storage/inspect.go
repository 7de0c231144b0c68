package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
)

// Damaged files: what badger.Open does with them, and why they are looked
// at before it runs.
//
// Checked here (badger v4.9.6) on databases written and closed by this
// package, then damaged:
//
//   - A truncated table (.sst): badger.Open reads each table's index in a
//     goroutine of its own (levels.go newLevelsController), and a table cut
//     short makes that goroutine panic (slice bounds out of range in
//     table.initIndex). A panic in a goroutine the caller did not start
//     cannot be recovered: the whole process dies. One damaged account
//     partition took the node down with it, queue and all.
//   - An emptied KEYREGISTRY: badger.Open fails ("Error while reading IV
//     for key registry") but leaves two goroutines running for ever (its
//     cleanup does not stop the cache monitor and the allocator pool), so
//     a partition actor retrying the open leaked two goroutines a try.
//   - A MANIFEST that is gone while tables remain: badger starts a new,
//     empty manifest and deletes every table it does not list, which is
//     all of them (levels.go revertToManifest): the data is silently lost.
//   - A truncated or overwritten value log: badger.Open truncates the last
//     file at the first entry that fails its checksum and succeeds; reads
//     of the values that were there return empty values with a nil error.
//     Frames (frame.go) turn those into ErrDamaged at read time.
//
// So before badger.Open, inspect reads what Open would read in its
// goroutines — the key registry, the manifest and the index of every
// table the manifest lists — with badger's own code (OpenKeyRegistry,
// ReplayManifestFile, table.OpenInMemoryTable on a read-only mapping of
// the file) in the caller's goroutine, where a panic is recovered. Damage
// found there is an error wrapping ErrDamaged, and badger.Open is not
// called at all (so nothing leaks). A panic of badger.Open itself, in the
// caller's goroutine, is recovered too (openBadger). Damage that badger
// only finds in a goroutine of its own and that inspect does not look for
// can still crash the process; `homing check` reads every block of every
// table (verifyBlocks) and every value, so it finds more than a start does.

// inspect looks at the badger files in dir as described above. It returns
// nil for a directory with no database yet. verifyBlocks also checks the
// CRC of every block of every table (reading them all), which a start
// does not.
func inspect(dir string, bopt badger.Options, verifyBlocks bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var tables []string
	hasManifest := false
	for _, e := range entries {
		switch name := e.Name(); {
		case name == badger.ManifestFilename:
			hasManifest = true
		case strings.HasSuffix(name, ".sst"):
			tables = append(tables, name)
		}
	}
	if !hasManifest {
		if len(tables) > 0 {
			slices.Sort(tables)
			return damaged("%s is missing but %d table(s) are there (%s): badger would delete them and start empty",
				badger.ManifestFilename, len(tables), strings.Join(tables, ", "))
		}
		return nil // a new database
	}
	if err := recovered("reading "+badger.KeyRegistryFileName, func() error {
		_, err := badger.OpenKeyRegistry(badger.KeyRegistryOptions{Dir: dir, ReadOnly: true})
		return err
	}); err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	defer f.Close()
	var mf badger.Manifest
	if err := recovered("replaying "+badger.ManifestFilename, func() error {
		mf, _, err = badger.ReplayManifestFile(f, bopt.ExternalMagicVersion, bopt)
		return err
	}); err != nil {
		return err
	}
	ids := make([]uint64, 0, len(mf.Tables))
	for id := range mf.Tables {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		tm := mf.Tables[id]
		if tm.KeyID != 0 {
			continue // encrypted: Homing never writes such tables, and cannot read them without the key
		}
		opts := table.Options{
			ReadOnly:           true,
			BlockSize:          bopt.BlockSize,
			BloomFalsePositive: bopt.BloomFalsePositive,
			Compression:        tm.Compression,
		}
		if err := inspectTable(table.NewFilename(id, dir), id, opts, verifyBlocks); err != nil {
			return err
		}
	}
	return nil
}

// inspectTable opens one table as badger.Open does (its index, its first
// and last keys), optionally reading every block, on a read-only mapping
// of the file that is unmapped when it returns.
func inspectTable(path string, id uint64, opts table.Options, verifyBlocks bool) error {
	name := filepath.Base(path)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return damaged("table %s is listed in the %s but missing", name, badger.ManifestFilename)
	}
	if err != nil {
		return fmt.Errorf("storage: table %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("storage: table %s: %w", name, err)
	}
	if fi.Size() == 0 {
		return damaged("table %s is empty", name)
	}
	data, err := z.Mmap(f, false, fi.Size())
	if err != nil {
		return fmt.Errorf("storage: table %s: %w", name, err)
	}
	defer z.Munmap(data)
	// OpenInMemoryTable runs the same index code as OpenTable but does not
	// own the mapping (its Close is a no-op), so the mapping is unmapped
	// exactly once, here, whatever the table code did.
	return recovered("reading table "+name, func() error {
		t, err := table.OpenInMemoryTable(data, id, &opts)
		if err != nil {
			return damaged("table %s: %v", name, err)
		}
		if verifyBlocks {
			if err := t.VerifyChecksum(); err != nil {
				return damaged("table %s: %v", name, err)
			}
		}
		return nil
	})
}

// recovered runs fn and turns a panic into an error wrapping ErrDamaged
// (what badger panics about while reading files is what is in them). An
// error of fn is returned wrapped in ErrDamaged unless it already is.
func recovered(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = damaged("badger crashed %s: %s", what, panicText(r))
		}
	}()
	if err := fn(); err != nil {
		if errors.Is(err, ErrDamaged) {
			return err
		}
		return damaged("%s: %v", what, err)
	}
	return nil
}

// guarded runs fn and turns a panic into an error wrapping ErrDamaged;
// fn's own error is returned as it is.
func guarded(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = damaged("badger crashed %s: %s", what, panicText(r))
		}
	}()
	return fn()
}

// openBadger is badger.Open with a panic in the caller's goroutine
// recovered into an error wrapping ErrDamaged (the directory lock and the
// manifest are released by Open's own deferred calls as the panic
// unwinds).
func openBadger(open func(badger.Options) (*badger.DB, error), opt badger.Options) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, damaged("badger crashed opening the database: %s", panicText(r))
			opt.Logger.Errorf("badger panicked opening %s: %v\n%s", opt.Dir, r, debug.Stack())
		}
	}()
	return open(opt)
}

// panicText is the gist of a panic value: badger's table panics are
// several lines of debugging output; the first lines that say something
// are enough for an error message (the stack goes to the log).
func panicText(r any) string {
	var lines []string
	for _, l := range strings.Split(fmt.Sprint(r), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "==") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 3 {
		lines = lines[:3]
	}
	return strings.Join(lines, "; ")
}
