package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/homing-mail/homing/summary"
)

// Migration of mailboxes stored before the folder model (folder.go).
//
// Open migrates every account whose state is older than modelVersion:
// it creates INBOX and the special-use folders and every folder that a
// message names, gives each message not in a folder's index yet the next
// UID of its folder (in id order, so the order of arrival), its flags from
// its old record, and a summary computed from its bytes (streamed), and
// finally sets the folders' counters from their indexes and the account's
// version. Messages are migrated in batches of migrateChunk, each durable;
// a migration that is interrupted (a crash) goes on at the next open with
// the messages that are not migrated yet, so none gets two UIDs.

const migrateChunk = 200

// migrate migrates every account of the partition that needs it; called
// by Open before anything else reads the partition.
func (p *Partition) migrate() error {
	var addrs []string
	if err := p.db.Scan(prefixAccount, func(k, _ []byte) error {
		addrs = append(addrs, string(k[len(prefixAccount):]))
		return nil
	}); err != nil {
		return err
	}
	for _, addr := range addrs {
		st, err := p.mailbox(addr)
		if err != nil {
			return err
		}
		if st.version >= modelVersion {
			continue
		}
		if err := p.migrateAccount(addr); err != nil {
			return fmt.Errorf("storage: migrating the mailbox of %s: %w", addr, err)
		}
	}
	return nil
}

func (p *Partition) migrateAccount(addr string) error {
	unlock := p.locks.lock(addr)
	defer unlock()
	ctx := context.Background()
	st, fs, err := p.model(addr)
	if err != nil {
		return err
	}
	// The folder counter and the last UIDVALIDITY from what exists, in
	// case a repair reset the state.
	for _, f := range fs {
		st.folders = max(st.folders, uint64(f.ID))
		st.validity = max(st.validity, uint64(f.UIDValidity))
	}
	var b Batch
	fs = defaultFolders(&b, addr, &st, fs, time.Now())
	b.Set(key(prefixState, addr), st.encode())
	if err := p.db.Commit(ctx, &b); err != nil {
		return err
	}
	type old struct {
		id  uint64
		rec messageRecord
	}
	var todo []old
	prefix := accountPrefix(prefixMeta, addr)
	if err := p.db.Scan(prefix, func(k, v []byte) error {
		if len(k) != len(prefix)+8 {
			return nil
		}
		var r messageRecord
		if json.Unmarshal(v, &r) != nil || r.FolderID != 0 {
			return nil
		}
		todo = append(todo, old{binary.BigEndian.Uint64(k[len(prefix):]), r})
		return nil
	}); err != nil {
		return err
	}
	for len(todo) > 0 {
		n := min(len(todo), migrateChunk)
		var b Batch
		for _, o := range todo[:n] {
			name, err := normalizeFolder(o.rec.Folder)
			if err != nil {
				name = Inbox
			}
			f, ok := folderByName(fs, name)
			if !ok {
				f = newFolder(&b, addr, &st, name, "", time.Now())
				fs = append(fs, f)
			}
			flags, err := NormalizeFlags(o.rec.Flags)
			if err != nil {
				flags = nil
			}
			uid := f.UIDNext
			f.UIDNext++
			f.ModSeq++
			i := slices.IndexFunc(fs, func(x Folder) bool { return x.ID == f.ID })
			fs[i] = f
			b.Set(indexKey(addr, f.ID, uid), Entry{UID: uid, ID: o.id, ModSeq: f.ModSeq, Flags: flags}.encode())
			sum, crlf := p.migrationSummary(addr, o.id)
			b.Set(messageKey(prefixSummary, addr, o.id), sum)
			rec := o.rec
			rec.Folder, rec.Flags, rec.FolderID, rec.UID, rec.CRLFSize = "", nil, f.ID, uid, crlf
			meta, _ := json.Marshal(rec)
			b.Set(messageKey(prefixMeta, addr, o.id), meta)
		}
		for _, f := range fs {
			putFolder(&b, addr, f)
		}
		b.Set(key(prefixState, addr), st.encode())
		if err := p.db.Commit(ctx, &b); err != nil {
			return err
		}
		todo = todo[n:]
	}
	// The counters from the indexes.
	var fb Batch
	for _, f := range fs {
		es, err := p.FolderEntries(addr, f.ID)
		if err != nil {
			return err
		}
		f.Messages, f.Unseen, f.Bytes = 0, 0, 0
		for _, e := range es {
			rec, err := p.message(addr, strconv.FormatUint(e.ID, 10), e.ID)
			if err != nil {
				// An index entry without its message (a repair removed
				// it): the entry goes too.
				fb.Delete(indexKey(addr, f.ID, e.UID))
				continue
			}
			f.Messages++
			f.Bytes += rec.Size
			if !seen(e.Flags) {
				f.Unseen++
			}
		}
		putFolder(&fb, addr, f)
	}
	st.version = modelVersion
	fb.Set(key(prefixState, addr), st.encode())
	return p.db.Commit(ctx, &fb)
}

// migrationSummary computes the summary of a stored message and its size
// with CRLF line ends; one whose bytes cannot be read gets an empty
// summary (FETCH then shows an empty envelope; reading the message
// reports the damage) and 0.
func (p *Partition) migrationSummary(addr string, id uint64) ([]byte, int64) {
	empty := []byte("{}")
	body, err := p.body(addr, strconv.FormatUint(id, 10), id)
	if err != nil {
		return empty, 0
	}
	rc, err := body.Open()
	if err != nil {
		return empty, 0
	}
	defer rc.Close()
	s, err := summary.Compute(rc)
	if err != nil {
		return empty, 0
	}
	_, _ = io.Copy(io.Discard, rc)
	v, err := s.Encode()
	if err != nil {
		return empty, 0
	}
	return v, s.CRLFSize
}
