package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/homing-mail/homing/mail"
)

// Changes to the messages of folders: flags, expunge, copy and move,
// deleting and renaming folders, and the admin API's changes by message
// id. Each returns once its batch is written (a later read sees it) with
// the channel that says when it is durable; the caller answers OK only
// then (the account actor waits off the actor). Work on many messages is
// done in batches of opChunk messages, each complete in itself: a crash
// in between leaves every message either changed or not, never lost or
// doubled.

// opChunk is the most messages one batch changes.
const opChunk = 500

// FlagOp is how StoreFlags changes flags (RFC 9051 §6.4.6).
type FlagOp int

// The STORE operations: FLAGS, +FLAGS, -FLAGS.
const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// applyFlags returns flags changed by op with fs.
func applyFlags(flags []string, op FlagOp, fs []string) []string {
	switch op {
	case FlagsReplace:
		return append([]string(nil), fs...)
	case FlagsAdd:
		out := append([]string(nil), flags...)
		for _, f := range fs {
			if !hasFlag(out, f) {
				out = append(out, f)
			}
		}
		return out
	default:
		return slices.DeleteFunc(append([]string(nil), flags...), func(x string) bool { return hasFlag(fs, x) })
	}
}

func sameFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, f := range a {
		if !hasFlag(b, f) {
			return false
		}
	}
	return true
}

// entry reads one index entry; ok false when there is none.
func (p *Partition) entry(addr string, fid, uid uint32) (Entry, bool, error) {
	v, err := p.db.Get(indexKey(addr, fid, uid))
	if errors.Is(err, mail.ErrNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	e, err := decodeEntry(uid, v)
	return e, err == nil, err
}

// folderByID finds a folder among fs.
func folderByID(fs []Folder, fid uint32) (Folder, bool) {
	for _, f := range fs {
		if f.ID == fid {
			return f, true
		}
	}
	return Folder{}, false
}

// chunks runs fn on uids opChunk at a time, each under the account's lock
// (fn builds a batch and commits it with commitWritten), and returns a
// channel that says when every batch is durable.
func (p *Partition) chunks(addr string, uids []uint32, fn func(part []uint32, unlock func()) (<-chan error, error)) (<-chan error, error) {
	var waits []<-chan error
	for len(uids) > 0 || waits == nil {
		n := min(len(uids), opChunk)
		unlock := p.locks.lock(addr)
		d, err := fn(uids[:n], unlock)
		if err != nil {
			return nil, err
		}
		if d != nil {
			waits = append(waits, d)
		} else if waits == nil {
			waits = []<-chan error{}
		}
		uids = uids[n:]
	}
	return allDurable(waits), nil
}

// allDurable is a channel that receives nil once every one of ws has, or
// the first error.
func allDurable(ws []<-chan error) <-chan error {
	out := make(chan error, 1)
	if len(ws) == 1 {
		return ws[0]
	}
	go func() {
		var first error
		for _, w := range ws {
			if err := <-w; err != nil && first == nil {
				first = err
			}
		}
		out <- first
	}()
	return out
}

// StoreFlags changes the flags of the messages uids of folder fid and
// returns their entries after the change (RFC 9051 §6.4.6); UIDs that are
// not in the folder are skipped, and a message whose flags do not change
// keeps its MODSEQ.
func (p *Partition) StoreFlags(ctx context.Context, account string, fid uint32, uids []uint32, op FlagOp, flags []string) ([]Entry, <-chan error, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, nil, err
	}
	if flags, err = NormalizeFlags(flags); err != nil {
		return nil, nil, err
	}
	var out []Entry
	durable, err := p.chunks(addr, uids, func(part []uint32, unlock func()) (<-chan error, error) {
		_, fs, err := p.model(addr)
		if err != nil {
			unlock()
			return nil, err
		}
		f, ok := folderByID(fs, fid)
		if !ok {
			unlock()
			return nil, folderNotFound(addr, strconv.Itoa(int(fid)))
		}
		var b Batch
		b.maintenance = true // changes records only (space.go)
		for _, uid := range part {
			e, ok, err := p.entry(addr, fid, uid)
			if err != nil {
				unlock()
				return nil, err
			}
			if !ok {
				continue
			}
			nf := applyFlags(e.Flags, op, flags)
			if !sameFlags(nf, e.Flags) {
				f.Unseen += unseenDelta(e.Flags, nf)
				f.ModSeq++
				e.Flags, e.ModSeq = nf, f.ModSeq
				b.Set(indexKey(addr, fid, uid), e.encode())
			}
			out = append(out, e)
		}
		if len(b.ops) == 0 {
			unlock()
			return nil, nil
		}
		putFolder(&b, addr, f)
		return p.commitWritten(ctx, &b, unlock)
	})
	if err != nil {
		return nil, nil, err
	}
	return out, durable, nil
}

func unseenDelta(before, after []string) int64 {
	switch {
	case seen(before) && !seen(after):
		return 1
	case !seen(before) && seen(after):
		return -1
	}
	return 0
}

// removal is a message being removed from the store: its records go into
// a batch, its body file (if any) is removed once that is committed.
type removal struct{ file string }

// removeMessage adds to b the deletion of message e of folder f (its
// metadata rec, bytes, file name, summary and index entry) and counts it
// out of st and f.
func (p *Partition) removeMessage(b *Batch, addr string, st *mailboxState, f *Folder, e Entry, rec messageRecord) removal {
	b.Delete(messageKey(prefixMeta, addr, e.ID))
	b.Delete(messageKey(prefixRaw, addr, e.ID))
	b.Delete(messageKey(prefixSummary, addr, e.ID))
	b.Delete(indexKey(addr, f.ID, e.UID))
	var r removal
	if v, err := p.db.Get(messageKey(prefixFile, addr, e.ID)); err == nil {
		r.file = string(v)
		b.Delete(messageKey(prefixFile, addr, e.ID))
	}
	st.bytes = max(st.bytes-rec.Size, 0)
	st.count = max(st.count-1, 0)
	f.Messages = max(f.Messages-1, 0)
	f.Bytes = max(f.Bytes-rec.Size, 0)
	if !seen(e.Flags) {
		f.Unseen = max(f.Unseen-1, 0)
	}
	return r
}

// afterRemoval removes the body files of removed messages once their
// records are gone for good (a crash before leaves orphans, removed at the
// next open).
func (p *Partition) afterRemoval(durable <-chan error, rs []removal) <-chan error {
	var files []string
	for _, r := range rs {
		if r.file != "" {
			files = append(files, r.file)
		}
	}
	if len(files) == 0 || durable == nil {
		return durable
	}
	out := make(chan error, 1)
	go func() {
		err := <-durable
		if err == nil {
			for _, name := range files {
				p.blobs.remove(name)
			}
		}
		out <- err
	}()
	return out
}

// Expunge removes the messages of folder fid that have \Deleted (RFC 9051
// §6.4.3), only those of uids when it is not nil (UID EXPUNGE, RFC 4315
// §2.1), and returns their UIDs in ascending order.
func (p *Partition) Expunge(ctx context.Context, account string, fid uint32, uids []uint32) ([]uint32, <-chan error, error) {
	return p.expunge(ctx, account, fid, uids, true)
}

// Remove removes the messages uids of folder fid whatever their flags.
func (p *Partition) Remove(ctx context.Context, account string, fid uint32, uids []uint32) ([]uint32, <-chan error, error) {
	return p.expunge(ctx, account, fid, uids, false)
}

func (p *Partition) expunge(ctx context.Context, account string, fid uint32, uids []uint32, deletedOnly bool) ([]uint32, <-chan error, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, nil, err
	}
	if uids == nil {
		es, err := p.FolderEntries(addr, fid)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range es {
			uids = append(uids, e.UID)
		}
	}
	var out []uint32
	durable, err := p.chunks(addr, uids, func(part []uint32, unlock func()) (<-chan error, error) {
		st, fs, err := p.model(addr)
		if err != nil {
			unlock()
			return nil, err
		}
		f, ok := folderByID(fs, fid)
		if !ok {
			unlock()
			return nil, folderNotFound(addr, strconv.Itoa(int(fid)))
		}
		var b Batch
		b.maintenance = true // deletes: what frees space (space.go)
		var rs []removal
		for _, uid := range part {
			e, ok, err := p.entry(addr, fid, uid)
			if err != nil {
				unlock()
				return nil, err
			}
			if !ok || (deletedOnly && !hasFlag(e.Flags, `\Deleted`)) {
				continue
			}
			rec, err := p.message(addr, "", e.ID)
			if err != nil && !errors.Is(err, mail.ErrNotFound) {
				unlock()
				return nil, err
			}
			rs = append(rs, p.removeMessage(&b, addr, &st, &f, e, rec))
			out = append(out, uid)
		}
		if len(rs) == 0 {
			unlock()
			return nil, nil
		}
		f.ModSeq++
		putFolder(&b, addr, f)
		b.Set(key(prefixState, addr), st.encode())
		d, err := p.commitWritten(ctx, &b, unlock)
		if err != nil {
			return nil, err
		}
		return p.afterRemoval(d, rs), nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(out)
	return out, durable, nil
}

// CopyResult says where CopyMessages put the messages (RFC 4315 §3,
// COPYUID): Source[i] became Dest[i] in the folder of UIDValidity.
type CopyResult struct {
	UIDValidity  uint32
	Source, Dest []uint32
	// ModSeq is the destination folder's MODSEQ after the copy.
	ModSeq uint64
}

// CopyMessages copies (RFC 9051 §6.4.7) or moves (RFC 6851) the messages
// uids of folder src into folder dst, in UID order, with their flags and
// internal dates; they get new UIDs there. A moved message keeps its
// message id and its bytes; a copy is a new message that shares the bytes
// of a message in a file (a hard link) and counts against the quota
// (quota > 0: ErrOverQuota when the copy does not fit). A moved message
// leaves src in the same batch in which it enters dst.
func (p *Partition) CopyMessages(ctx context.Context, account string, src uint32, uids []uint32, dst uint32, move bool, quota int64) (CopyResult, <-chan error, error) {
	addr, err := p.account(account)
	if err != nil {
		return CopyResult{}, nil, err
	}
	uids = slices.Clone(uids)
	slices.Sort(uids)
	uids = slices.Compact(uids)
	var res CopyResult
	durable, err := p.chunks(addr, uids, func(part []uint32, unlock func()) (<-chan error, error) {
		st, fs, err := p.model(addr)
		if err != nil {
			unlock()
			return nil, err
		}
		from, ok := folderByID(fs, src)
		to, ok2 := folderByID(fs, dst)
		if !ok || !ok2 {
			unlock()
			return nil, folderNotFound(addr, strconv.Itoa(int(dst)))
		}
		res.UIDValidity = to.UIDValidity
		var b Batch
		// A move only changes records; a copy adds messages, kept above
		// the floor like any new data (space.go).
		b.maintenance = move
		var rs []removal
		moved := false
		for _, uid := range part {
			e, ok, err := p.entry(addr, src, uid)
			if err != nil {
				unlock()
				return nil, err
			}
			if !ok {
				continue
			}
			rec, err := p.message(addr, strconv.FormatUint(e.ID, 10), e.ID)
			if err != nil {
				unlock()
				return nil, err
			}
			nu := to.UIDNext
			to.UIDNext++
			to.ModSeq++
			to.Messages++
			to.Bytes += rec.Size
			if !seen(e.Flags) {
				to.Unseen++
			}
			id := e.ID
			if move {
				b.Delete(indexKey(addr, src, uid))
				from.Messages = max(from.Messages-1, 0)
				from.Bytes = max(from.Bytes-rec.Size, 0)
				if !seen(e.Flags) {
					from.Unseen = max(from.Unseen-1, 0)
				}
				moved = true
			} else {
				if quota > 0 && st.bytes+rec.Size > quota {
					unlock()
					for _, r := range rs {
						p.blobs.remove(r.file)
					}
					return nil, fmt.Errorf("%w: %s uses %d of %d bytes", ErrOverQuota, addr, st.bytes, quota)
				}
				id = st.next
				st.next++
				st.bytes += rec.Size
				st.count++
				r, err := p.copyBytes(&b, addr, e.ID, id)
				if err != nil {
					unlock()
					for _, r := range rs {
						p.blobs.remove(r.file)
					}
					return nil, err
				}
				rs = append(rs, r)
				rec.DedupKey = ""
			}
			rec.FolderID, rec.UID = dst, nu
			meta, _ := json.Marshal(rec)
			b.Set(messageKey(prefixMeta, addr, id), meta)
			b.Set(indexKey(addr, dst, nu), Entry{UID: nu, ID: id, ModSeq: to.ModSeq, Flags: e.Flags}.encode())
			res.Source = append(res.Source, uid)
			res.Dest = append(res.Dest, nu)
		}
		if len(res.Dest) == 0 || b.Len() == 0 {
			unlock()
			return nil, nil
		}
		if moved {
			from.ModSeq++
			putFolder(&b, addr, from)
		}
		putFolder(&b, addr, to)
		b.Set(key(prefixState, addr), st.encode())
		res.ModSeq = to.ModSeq
		return p.commitWritten(ctx, &b, unlock)
	})
	if err != nil {
		return CopyResult{}, nil, err
	}
	return res, durable, nil
}

// copyBytes adds to b the bytes and summary of message from as message
// to's: a frame is copied, a body in a file gets another hard link.
func (p *Partition) copyBytes(b *Batch, addr string, from, to uint64) (removal, error) {
	v, err := p.db.Get(messageKey(prefixRaw, addr, from))
	if err != nil {
		return removal{}, err
	}
	if sum, err := p.db.Get(messageKey(prefixSummary, addr, from)); err == nil {
		b.Set(messageKey(prefixSummary, addr, to), sum)
	}
	if !isRef(v) {
		b.Set(messageKey(prefixRaw, addr, to), v)
		return removal{}, nil
	}
	ref, err := decodeRef(v)
	if err != nil {
		return removal{}, err
	}
	body := p.blobs.body(ref, ownerString(addr, from))
	_, fb := fileBodyOf(body)
	name, err := p.blobs.hold(fb, ownerString(addr, to))
	if err != nil {
		return removal{}, err
	}
	ref.name = name
	b.Set(messageKey(prefixRaw, addr, to), ref.encode())
	b.Set(messageKey(prefixFile, addr, to), []byte(name))
	// The new link is removed again only if the batch is not written
	// (the caller removes it on its own failure).
	return removal{file: name}, nil
}

// DeleteFolder deletes a folder and its messages (RFC 9051 §6.3.5).
// INBOX cannot be deleted (ErrCannot). Folders under it stay.
func (p *Partition) DeleteFolder(ctx context.Context, account, name string) (<-chan error, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, err
	}
	if name, err = checkFolderName(name); err != nil {
		return nil, err
	}
	if name == Inbox {
		return nil, fmt.Errorf("%w: INBOX cannot be deleted", ErrCannot)
	}
	f, err := p.Folder(addr, name)
	if err != nil {
		return nil, err
	}
	_, d1, err := p.Remove(ctx, addr, f.ID, nil)
	if err != nil {
		return nil, err
	}
	unlock := p.locks.lock(addr)
	var b Batch
	b.maintenance = true
	b.Delete(folderKey(addr, f.ID))
	d2, err := p.commitWritten(ctx, &b, unlock)
	if err != nil {
		return nil, err
	}
	return allDurable([]<-chan error{d1, d2}), nil
}

// RenameFolder renames a folder and the folders under it (RFC 9051
// §6.3.6); they keep their UIDVALIDITY and messages. Renaming INBOX moves
// its messages into a new folder of the new name and leaves INBOX empty.
func (p *Partition) RenameFolder(ctx context.Context, account, from, to string) (<-chan error, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, err
	}
	if from, err = checkFolderName(from); err != nil {
		return nil, err
	}
	if to, err = checkFolderName(to); err != nil {
		return nil, err
	}
	if to == Inbox || strings.HasPrefix(to, from+Delimiter) || to == from {
		return nil, fmt.Errorf("%w: cannot rename %q to %q", ErrCannot, from, to)
	}
	if from == Inbox {
		f, err := p.Folder(addr, Inbox)
		if err != nil {
			return nil, err
		}
		nf, d1, err := p.CreateFolder(ctx, addr, to, "")
		if err != nil {
			return nil, err
		}
		es, err := p.FolderEntries(addr, f.ID)
		if err != nil {
			return nil, err
		}
		uids := make([]uint32, len(es))
		for i, e := range es {
			uids[i] = e.UID
		}
		_, d2, err := p.CopyMessages(ctx, addr, f.ID, uids, nf.ID, true, 0)
		if err != nil {
			return nil, err
		}
		return allDurable([]<-chan error{d1, d2}), nil
	}
	unlock := p.locks.lock(addr)
	_, fs, err := p.model(addr)
	if err != nil {
		unlock()
		return nil, err
	}
	if _, ok := folderByName(fs, from); !ok {
		unlock()
		return nil, folderNotFound(addr, from)
	}
	if _, ok := folderByName(fs, to); ok {
		unlock()
		return nil, fmt.Errorf("storage: folder %q of %s: %w", to, addr, mail.ErrExists)
	}
	var b Batch
	b.maintenance = true // renames records only
	for _, f := range fs {
		switch {
		case f.Name == from:
			f.Name = to
		case strings.HasPrefix(f.Name, from+Delimiter):
			f.Name = to + f.Name[len(from):]
		default:
			continue
		}
		putFolder(&b, addr, f)
	}
	return p.commitWritten(ctx, &b, unlock)
}

// Where message id is: its folder and UID (and metadata).
func (p *Partition) locate(addr, id string) (uint64, messageRecord, error) {
	n, err := parseMessageID(addr, id)
	if err != nil {
		return 0, messageRecord{}, err
	}
	rec, err := p.message(addr, id, n)
	return n, rec, err
}

// SetFlags replaces the flags of message id (the admin API). It returns
// once the change is durable; an error wraps mail.ErrNotFound if there is
// no such message.
func (p *Partition) SetFlags(ctx context.Context, account, id string, flags []string) error {
	return p.ChangeFlags(ctx, account, id, flags, nil, true)
}

// ChangeFlags adds and removes flags of message id (replace: set them to
// add) and returns once that is durable.
func (p *Partition) ChangeFlags(ctx context.Context, account, id string, add, remove []string, replace bool) error {
	addr, err := p.account(account)
	if err != nil {
		return err
	}
	_, rec, err := p.locate(addr, id)
	if err != nil {
		return err
	}
	var durable []<-chan error
	ops := []struct {
		op    FlagOp
		flags []string
	}{{FlagsAdd, add}, {FlagsRemove, remove}}
	if replace {
		ops = ops[:1]
		ops[0].op = FlagsReplace
	}
	for _, o := range ops {
		if len(o.flags) == 0 && o.op != FlagsReplace {
			continue
		}
		_, d, err := p.StoreFlags(ctx, addr, rec.FolderID, []uint32{rec.UID}, o.op, o.flags)
		if err != nil {
			return err
		}
		durable = append(durable, d)
	}
	return waitAll(ctx, durable)
}

func waitAll(ctx context.Context, ds []<-chan error) error {
	for _, d := range ds {
		if d == nil {
			continue
		}
		select {
		case err := <-d:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// DeleteMessage removes message id and subtracts it from the usage, in one
// batch, and returns once that is durable. Its dedup record stays (until
// DedupRetention), so a delivery retried after the user deleted the
// message is still recognised. It fails with an error wrapping
// mail.ErrNotFound if there is no such message.
func (p *Partition) DeleteMessage(ctx context.Context, account, id string) error {
	addr, err := p.account(account)
	if err != nil {
		return err
	}
	_, rec, err := p.locate(addr, id)
	if err != nil {
		return err
	}
	got, d, err := p.Remove(ctx, addr, rec.FolderID, []uint32{rec.UID})
	if err != nil {
		return err
	}
	if len(got) == 0 {
		return messageNotFound(addr, id)
	}
	return waitAll(ctx, []<-chan error{d})
}

// MoveMessage moves message id into folder (the admin API; it keeps its
// id) and returns its new UID once the move is durable.
func (p *Partition) MoveMessage(ctx context.Context, account, id, folder string) (uint32, error) {
	addr, err := p.account(account)
	if err != nil {
		return 0, err
	}
	_, rec, err := p.locate(addr, id)
	if err != nil {
		return 0, err
	}
	f, err := p.Folder(addr, folder)
	if err != nil {
		return 0, err
	}
	if f.ID == rec.FolderID {
		return rec.UID, nil
	}
	res, d, err := p.CopyMessages(ctx, addr, rec.FolderID, []uint32{rec.UID}, f.ID, true, 0)
	if err != nil {
		return 0, err
	}
	if len(res.Dest) == 0 {
		return 0, messageNotFound(addr, id)
	}
	return res.Dest[0], waitAll(ctx, []<-chan error{d})
}

// Messages lists account's messages in folder ("" = every folder) in id
// order, with their flags and summaries, without reading their bytes. It
// fails with an error wrapping mail.ErrNotFound if the account (or the
// folder) does not exist.
func (p *Partition) Messages(account, folder string) ([]MessageInfo, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, err
	}
	fs, err := p.Folders(addr)
	if err != nil {
		return nil, err
	}
	names := map[uint32]string{}
	flags := map[uint64][]string{}
	for _, f := range fs {
		names[f.ID] = f.Name
	}
	var only uint32
	if folder != "" {
		f, err := p.Folder(addr, folder)
		if err != nil {
			return nil, err
		}
		only = f.ID
	}
	for _, f := range fs {
		if only != 0 && f.ID != only {
			continue
		}
		es, err := p.FolderEntries(addr, f.ID)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			flags[e.ID] = e.Flags
		}
	}
	prefix := accountPrefix(prefixMeta, addr)
	out := []MessageInfo{}
	err = p.db.Scan(prefix, func(k, v []byte) error {
		if len(k) != len(prefix)+8 {
			return fmt.Errorf("storage: bad message key %q", k)
		}
		var r messageRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("storage: metadata of message %q: %w: %v", k, ErrDamaged, err)
		}
		if only != 0 && r.FolderID != only {
			return nil
		}
		id := binary.BigEndian.Uint64(k[len(prefix):])
		mi := MessageInfo{
			ID:       strconv.FormatUint(id, 10),
			Folder:   names[r.FolderID],
			Size:     r.Size,
			CRLFSize: r.crlfSize(),
			Received: r.Received,
			Flags:    flags[id],
			UID:      r.UID,
		}
		out = append(out, mi)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		id, _ := strconv.ParseUint(out[i].ID, 10, 64)
		if sum, err := p.db.Get(messageKey(prefixSummary, addr, id)); err == nil {
			out[i].Summary = sum
		}
	}
	return out, nil
}
