package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/homing-mail/homing/mail"
)

// Offline checks of a data directory (`homing check DATA_DIR [--repair]`).
//
// CheckQueue and CheckPartition open one store exclusively, as a node does
// (so they are refused, with ErrLocked, while a node holds it), read every
// record and every body and check them as the node's reads do (frames,
// decoding), and with repair isolate what is damaged:
//
//   - a queued message whose body is damaged or missing is held as
//     damaged (Envelope.Damaged, so the node never relays or delivers it
//     and lists it as "damaged"; the administrator deletes it, or retries
//     it once the data is restored); one whose envelope does not decode is
//     removed with its body (nothing says where it was going), and a body
//     without an envelope is removed;
//   - a mailbox message whose bytes are damaged or missing is removed
//     (metadata and bytes; its dedup record stays, so a repeated delivery
//     is not stored again); one whose metadata is damaged but whose bytes
//     check gets new metadata (folder INBOX, received now) instead of being
//     lost; then every account's usage counters (bytes, messages, next id)
//     are set to what is stored;
//   - a store that does not open because its KEYREGISTRY is damaged is
//     opened again after the registry is moved aside (badger writes a new
//     one): safe because Homing never encrypts, so the registry holds no
//     key that a table or value-log file needs (checked: every table of the
//     manifest names key 0). Other damaged badger files (a truncated table,
//     a lost MANIFEST) are reported, not repaired: restore the directory
//     from a backup.
//
// Opening a store replays badger's logs as a node's start would (badger
// truncates a value log at the first entry that fails its checksum); a
// check without repair writes nothing else. Tables are read block by block
// with their checksums verified (a start reads only their indexes).

// CheckReport is what a check found in one store and what it did.
type CheckReport struct {
	Store string // "queue", "partition 3"
	Dir   string
	// Absent: there is no store in Dir (nothing to check).
	Absent bool
	// Err: the store could not be opened or read (damaged files, a lock
	// held by a running node: errors.Is(Err, ErrLocked)). Nothing else
	// was checked.
	Err error
	// Checked counts what was read: queued messages, or accounts and
	// mailbox messages.
	Messages, Accounts int
	// Damaged lists every damaged record with its key, and what repair
	// did about it (Action, "" without repair).
	Damaged []Finding
	// Orphans lists the body files no record holds (blob.go: a crash
	// before their record was written or after it was deleted). They
	// are not damage: the node removes them when it opens the store, and
	// repair removes them here (Repaired says so).
	Orphans []string
	// Repaired says what was done to the store's files as a whole.
	Repaired []string
}

// Finding is one damaged record.
type Finding struct {
	Key     string // the record's key, printable: b/<id>, r/<addr>\x00<n>
	Problem string
	Action  string // what --repair did; "" when not repaired
}

// OK reports whether the store was checked and nothing is damaged.
func (r *CheckReport) OK() bool { return r.Err == nil && len(r.Damaged) == 0 }

func (r *CheckReport) found(key, problem string) *Finding {
	r.Damaged = append(r.Damaged, Finding{Key: key, Problem: problem})
	return &r.Damaged[len(r.Damaged)-1]
}

// checkBlobs is the bodies directory of the store in dir, as a check
// reads it (without creating it).
func checkBlobs(dir string, opt Options) *blobDir {
	opt = checkOptions(opt).normalized()
	return &blobDir{path: filepath.Join(dir, bodiesDir), fsync: true, inline: opt.InlineBodyBytes, log: opt.Logger}
}

// checkOrphans reports the files of d that no index record under prefix
// names, and with repair removes them.
func checkOrphans(r *CheckReport, db *DB, d *blobDir, prefix []byte, repair bool) error {
	names, err := heldNames(db, prefix)
	if err != nil {
		return err
	}
	orphans, err := d.orphans(names)
	if err != nil {
		return err
	}
	r.Orphans = orphans
	if repair && len(orphans) > 0 {
		n, err := d.removeOrphans(names)
		if err != nil {
			return err
		}
		r.Repaired = append(r.Repaired, fmt.Sprintf("removed %d body file(s) no record holds", n))
	}
	return nil
}

// checkOptions are the options of a store opened by a check: no GC, no
// shared syncer (badger syncs each repair itself).
func checkOptions(opt Options) Options {
	opt.ValueLogGCInterval = -1
	opt.Syncer = nil
	return opt
}

// openForCheck opens the DB in dir for a check, after reading its tables
// block by block; with repair, a damaged KEYREGISTRY is moved aside first.
func openForCheck(r *CheckReport, dir string, opt Options, prof profile, repair bool) *DB {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		r.Absent = true
		return nil
	}
	opt = checkOptions(opt).normalized()
	bopt := badgerOptions(dir, opt, prof, &badgerLogger{log: opt.Logger})
	fc, err := takeFence(dir, opt)
	if err != nil {
		r.Err = err
		return nil
	}
	release := func() { _ = fc.release() }
	if repair {
		if done, err := repairKeyRegistry(dir, bopt); err != nil {
			release()
			r.Err = err
			return nil
		} else if done != "" {
			r.Repaired = append(r.Repaired, done)
		}
	}
	if err := inspect(dir, bopt, false); err != nil {
		// What a node's start checks: the store does not open.
		release()
		r.Err = fmt.Errorf("storage: %s: %w", dir, err)
		return nil
	}
	if err := inspect(dir, bopt, true); err != nil {
		// A block that fails its checksum: the store opens, and the
		// records in that block are found below if they do not check.
		r.found("tables", err.Error()+" (not repaired: restore the directory from a backup to recover that table)")
	}
	db, err := openFenced(dir, opt, prof, fc)
	if err != nil {
		release()
		r.Err = err
		return nil
	}
	return db
}

// repairKeyRegistry moves a KEYREGISTRY that badger cannot read aside,
// when no table needs a key from it, and says what it did ("" when the
// registry is fine).
func repairKeyRegistry(dir string, bopt badger.Options) (string, error) {
	path := filepath.Join(dir, badger.KeyRegistryFileName)
	if _, err := os.Stat(path); err != nil {
		return "", nil
	}
	if _, err := badger.OpenKeyRegistry(badger.KeyRegistryOptions{Dir: dir, ReadOnly: true}); err == nil {
		return "", nil
	}
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if err != nil {
		return "", fmt.Errorf("storage: %s: %w", dir, err)
	}
	defer f.Close()
	var mf badger.Manifest
	if err := recovered("replaying "+badger.ManifestFilename, func() error {
		mf, _, err = badger.ReplayManifestFile(f, bopt.ExternalMagicVersion, bopt)
		return err
	}); err != nil {
		return "", fmt.Errorf("storage: %s: %w", dir, err)
	}
	for id, tm := range mf.Tables {
		if tm.KeyID != 0 {
			return "", fmt.Errorf("storage: %s: %w: %s is damaged and table %d is encrypted with one of its keys",
				dir, ErrDamaged, badger.KeyRegistryFileName, id)
		}
	}
	aside := fmt.Sprintf("%s.damaged-%d", path, time.Now().Unix())
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("storage: %w", err)
	}
	return fmt.Sprintf("%s could not be read; moved to %s (no table is encrypted, so badger writes a new one)",
		badger.KeyRegistryFileName, filepath.Base(aside)), nil
}

// CheckQueue checks the queue store in dir (see above).
func CheckQueue(dir string, repair bool, opt Options) *CheckReport {
	r := &CheckReport{Store: "queue", Dir: dir}
	db := openForCheck(r, dir, opt, queueProfile, repair)
	if db == nil {
		return r
	}
	defer func() {
		if err := db.Close(); err != nil && r.Err == nil {
			r.Err = err
		}
	}()
	blobs := checkBlobs(dir, opt)
	if err := guarded("reading the queue", func() error { return checkQueue(r, db, blobs, repair) }); err != nil {
		r.Err = err
	}
	return r
}

func checkQueue(r *CheckReport, db *DB, blobs *blobDir, repair bool) error {
	ctx := context.Background()
	envelopes := map[string]bool{}
	var hold []*mail.Envelope
	var drop [][]byte
	err := db.Scan(prefixEnvelope, func(k, v []byte) error {
		id := string(k[len(prefixEnvelope):])
		envelopes[id] = true
		r.Messages++
		env, err := decodeEnvelope(id, v)
		if err != nil {
			f := r.found(string(k), err.Error())
			if repair {
				drop = append(drop, k, key(prefixBody, id), key(prefixFile, id))
				f.Action = "removed with its body: the envelope does not say where it was going"
			}
			return nil
		}
		problem := ""
		if env.Damaged != "" {
			problem = "held as damaged: " + env.Damaged
		}
		q := &QueueStore{db: db, blobs: blobs}
		if body, err := q.Body(id); errors.Is(err, mail.ErrNotFound) {
			problem = "the body is missing"
		} else if err != nil {
			problem = err.Error()
		} else if err := VerifyBody(body); err != nil {
			problem = fmt.Sprintf("storage: body of queue message %s: %v", id, err)
		}
		if problem == "" {
			return nil
		}
		f := r.found(string(key(prefixBody, id)), problem)
		switch {
		case env.Damaged != "":
			f.Action = "left held as damaged"
		case repair:
			env.Damaged = problem
			hold = append(hold, env)
			f.Action = "held as damaged: never relayed or delivered; delete it, or retry it once its data is restored"
		}
		return nil
	})
	if err == nil {
		err = db.scanKeys(prefixBody, func(k []byte) error {
			if !envelopes[string(k[len(prefixBody):])] {
				f := r.found(string(k), "a body without an envelope")
				if repair {
					drop = append(drop, k, key(prefixFile, string(k[len(prefixBody):])))
					// Its body file, if any, goes at the next open.
					f.Action = "removed"
				}
			}
			return nil
		})
	}
	if err == nil {
		err = checkOrphans(r, db, blobs, prefixFile, repair)
	}
	if err != nil {
		return err
	}
	var b Batch
	for _, k := range drop {
		b.Delete(k)
	}
	for _, env := range hold {
		eb, err := envelopeBatch(env)
		if err != nil {
			return err
		}
		b.ops, b.bytes = append(b.ops, eb.ops...), b.bytes+eb.bytes
	}
	if b.Len() > 0 {
		if err := db.Commit(ctx, &b); err != nil {
			return fmt.Errorf("storage: repairing %s: %w", r.Dir, err)
		}
	}
	return nil
}

// CheckAccountStore checks every partition of the account store in root
// that exists, in order, and returns one report per partition (none when
// there is no store in root).
func CheckAccountStore(root string, repair bool, opt Options) ([]*CheckReport, error) {
	n, err := readStoreMeta(filepath.Join(root, storeFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := &AccountStore{root: root, n: n, opt: opt}
	var out []*CheckReport
	for id := range n {
		if r := checkPartition(s, id, repair); !r.Absent {
			out = append(out, r)
		}
	}
	return out, nil
}

// mailboxEntry is what a check finds of one message.
type mailboxEntry struct {
	meta, raw []byte // nil when the record is missing
}

// checkPartition checks partition id of s (see above).
func checkPartition(s *AccountStore, id int, repair bool) *CheckReport {
	r := &CheckReport{Store: fmt.Sprintf("partition %d", id), Dir: s.dir(id)}
	db := openForCheck(r, s.dir(id), s.opt, mailboxProfile, repair)
	if db == nil {
		return r
	}
	defer func() {
		if err := db.Close(); err != nil && r.Err == nil {
			r.Err = err
		}
	}()
	blobs := checkBlobs(s.dir(id), s.opt)
	if err := guarded("reading the partition", func() error { return checkMailboxes(r, db, blobs, repair) }); err != nil {
		r.Err = err
	}
	return r
}

func checkMailboxes(r *CheckReport, db *DB, blobs *blobDir, repair bool) error {
	accounts := map[string]bool{}
	purging := map[string]bool{}
	if err := db.Scan(prefixAccount, func(k, v []byte) error {
		addr := string(k[len(prefixAccount):])
		accounts[addr] = true
		r.Accounts++
		if _, err := decodeAccount(v); err != nil {
			r.found(string(k), err.Error()+" (not repaired: restore the account from a backup, or delete and create it again)")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := db.scanKeys(prefixPurge, func(k []byte) error {
		purging[string(k[len(prefixPurge):])] = true
		return nil
	}); err != nil {
		return err
	}
	// Every message of every account: metadata and bytes.
	msgs := map[string]map[uint64]*mailboxEntry{}
	for _, prefix := range [][]byte{prefixMeta, prefixRaw} {
		if err := db.Scan(prefix, func(k, v []byte) error {
			rest := k[len(prefix):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 || len(rest) != i+9 {
				r.found(printableKey(k), "a message key of the wrong form")
				return nil
			}
			addr, n := string(rest[:i]), binary.BigEndian.Uint64(rest[i+1:])
			if msgs[addr] == nil {
				msgs[addr] = map[uint64]*mailboxEntry{}
			}
			e := msgs[addr][n]
			if e == nil {
				e = new(mailboxEntry)
				msgs[addr][n] = e
			}
			if prefix[0] == prefixMeta[0] {
				e.meta = v
			} else {
				e.raw = v
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if err := db.Scan(prefixDedup, func(k, v []byte) error {
		if len(v) != 8 {
			f := r.found(printableKey(k), fmt.Sprintf("a dedup record of %d bytes, not 8", len(v)))
			if repair {
				f.Action = "removed (a repeated delivery of that message may be stored again)"
				var b Batch
				b.Delete(k)
				return db.Commit(context.Background(), &b)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	addrs := make([]string, 0, len(msgs))
	for a := range msgs {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for _, addr := range addrs {
		if purging[addr] {
			continue // a deleted account: the next open finishes its purge
		}
		if err := checkMailbox(r, db, blobs, addr, msgs[addr], accounts[addr], repair); err != nil {
			return err
		}
	}
	if err := checkOrphans(r, db, blobs, prefixFile, repair); err != nil {
		return err
	}
	// Accounts without messages: their counters must say so.
	for addr := range accounts {
		if msgs[addr] == nil && !purging[addr] {
			if err := checkUsage(r, db, addr, 0, 0, 0, repair); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkMailbox checks the messages of one account and then its usage.
func checkMailbox(r *CheckReport, db *DB, blobs *blobDir, addr string, msgs map[uint64]*mailboxEntry, exists, repair bool) error {
	ids := make([]uint64, 0, len(msgs))
	for n := range msgs {
		ids = append(ids, n)
	}
	slices.Sort(ids)
	if !exists {
		r.found(string(key(prefixAccount, addr)), fmt.Sprintf("%d message(s) of an account that does not exist (not repaired)", len(ids)))
		return nil
	}
	var bytesUsed, count int64
	var maxID uint64
	var b Batch
	// remodel: the folder indexes no longer match the messages; the next
	// open migrates the account again (migrate.go), which indexes the
	// salvaged messages and drops the entries of removed ones.
	remodel := false
	for _, n := range ids {
		e := msgs[n]
		r.Messages++
		maxID = max(maxID, n)
		metaKey, rawKey := messageKey(prefixMeta, addr, n), messageKey(prefixRaw, addr, n)
		var rec messageRecord
		metaErr := errors.New("the metadata is missing")
		if e.meta != nil {
			if metaErr = json.Unmarshal(e.meta, &rec); metaErr != nil {
				metaErr = fmt.Errorf("the metadata does not decode: %v", metaErr)
			}
		}
		size := int64(-1)
		if metaErr == nil {
			size = rec.Size
		}
		var bodySize int64
		rawErr := errors.New("the message's bytes are missing")
		if e.raw != nil {
			bodySize, rawErr = checkRaw(blobs, e.raw, size, ownerString(addr, n))
		}
		switch {
		case metaErr == nil && rawErr == nil:
			bytesUsed += rec.Size
			count++
		case rawErr != nil:
			f := r.found(printableKey(rawKey), rawErr.Error())
			if repair {
				b.Delete(metaKey)
				b.Delete(rawKey)
				// Its file, if any, becomes an orphan: removed below.
				b.Delete(messageKey(prefixFile, addr, n))
				b.Delete(messageKey(prefixSummary, addr, n))
				remodel = true
				f.Action = "removed (metadata and bytes); its dedup record stays"
			} else {
				// Until it is removed it is listed and counted.
				bytesUsed += max(size, 0)
				count++
			}
		default: // the bytes check, the metadata does not
			f := r.found(printableKey(metaKey), metaErr.Error())
			if repair {
				meta, err := json.Marshal(messageRecord{Folder: Inbox, Size: bodySize, Received: time.Now().UTC()})
				if err != nil {
					return err
				}
				b.Set(metaKey, meta)
				remodel = true
				f.Action = "new metadata from the intact bytes: folder INBOX, received now, no flags"
			}
			bytesUsed += bodySize
			count++
		}
	}
	if b.Len() > 0 {
		if err := db.Commit(context.Background(), &b); err != nil {
			return fmt.Errorf("storage: repairing the mailbox of %s: %w", addr, err)
		}
	}
	if err := checkUsage(r, db, addr, bytesUsed, count, maxID, repair); err != nil || !remodel {
		return err
	}
	v, err := db.Get(key(prefixState, addr))
	if err != nil {
		return err
	}
	st, err := decodeState(v)
	if err != nil {
		return err
	}
	st.version = 0
	var sb Batch
	sb.Set(key(prefixState, addr), st.encode())
	return db.Commit(context.Background(), &sb)
}

// checkUsage compares an account's usage counters with what is stored
// (bytes and count of its messages, the largest id) and, with repair,
// sets them to it.
func checkUsage(r *CheckReport, db *DB, addr string, used, count int64, maxID uint64, repair bool) error {
	k := key(prefixState, addr)
	v, err := db.Get(k)
	var st mailboxState
	problem := ""
	switch {
	case errors.Is(err, mail.ErrNotFound):
		if count == 0 && maxID == 0 {
			return nil // a new account
		}
		problem = "the usage counters are missing"
	case err != nil:
		return err
	default:
		if st, err = decodeState(v); err != nil {
			problem = err.Error()
		}
	}
	if problem == "" && st.bytes == used && st.count == count && st.next > maxID {
		return nil
	}
	if problem == "" {
		problem = fmt.Sprintf("the usage counters say %d bytes in %d messages (next id %d); stored are %d bytes in %d messages (largest id %d)",
			st.bytes, st.count, st.next, used, count, maxID)
	}
	f := r.found(string(k), problem)
	if !repair {
		return nil
	}
	fixed := mailboxState{next: max(st.next, maxID+1, 1), bytes: used, count: count}
	var b Batch
	b.Set(k, fixed.encode())
	if err := db.Commit(context.Background(), &b); err != nil {
		return fmt.Errorf("storage: repairing the usage of %s: %w", addr, err)
	}
	f.Action = fmt.Sprintf("set to %d bytes in %d messages, next id %d", fixed.bytes, fixed.count, fixed.next)
	return nil
}

// printableKey shows a key of the partition layout (keys.go) with its NUL
// and its big-endian message id readable: r/ann@example.test\x00#2.
func printableKey(k []byte) string {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return strconv.Quote(string(k))
	}
	rest := k[i+1:]
	if len(rest) == 8 && (k[0] == prefixMeta[0] || k[0] == prefixRaw[0]) {
		return string(k[:i]) + `\x00#` + strconv.FormatUint(binary.BigEndian.Uint64(rest), 10)
	}
	return string(k[:i]) + `\x00` + string(rest)
}

// checkRaw checks the stored value of a message's bytes (a frame, or a
// reference to a file, which is read whole) against size (-1: unknown)
// and returns the message's length.
func checkRaw(blobs *blobDir, v []byte, size int64, owner string) (int64, error) {
	if !isRef(v) {
		body, err := unframe(v, size)
		return int64(len(body)), err
	}
	ref, err := decodeRef(v)
	if err != nil {
		return 0, err
	}
	n := ref.size + int64(len(ref.prefix))
	if size >= 0 && size != n {
		return 0, damaged("reference to %d+%d bytes, %d recorded", len(ref.prefix), ref.size, size)
	}
	if err := VerifyBody(blobs.body(ref, owner)); err != nil {
		return 0, err
	}
	return n, nil
}
