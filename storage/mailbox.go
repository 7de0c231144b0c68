package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/summary"
)

// Inbox is the folder of Append requests that name none. Like IMAP's INBOX
// (RFC 3501 §5.1) it is matched case-insensitively.
const Inbox = "INBOX"

// DedupRetention is how long Append remembers a DedupKey. It must outlast
// every retry of a delivery: a queue gives up on a message after a few days
// (RFC 5321 §4.5.4.1 suggests 4-5), so 30 days is ample, and dedup records
// do not pile up for ever.
const DedupRetention = 30 * 24 * time.Hour

// maxFolderBytes bounds folder names.
const maxFolderBytes = 255

// AppendRequest is a message to store in a mailbox.
type AppendRequest struct {
	Folder   string // "" = Inbox
	DedupKey string // e.g. queueID+"/"+recipient; "" = no dedup
	Raw      []byte // the RFC 5322 message; must not be empty (unless Body is set)
	// Body, when set, is the message instead of Raw. A body in a file
	// (*FileBody, under a prefix or not: a body of the queue, or one
	// fetched into this partition with NewBody) is hard-linked into the
	// partition's bodies directory, so the queue and every mailbox on
	// the filesystem share one copy on disk (across filesystems it is
	// copied, streaming: slow, so a caller on an actor stages it first),
	// and referenced with its prefix (header fields the account's rules
	// add). Any other body is read and stored like Raw.
	Body     mail.Body
	Received time.Time // zero = now
	Flags    []string
	// QuotaBytes, when positive, refuses the append (ErrOverQuota) if the
	// mailbox would hold more than this many bytes with it.
	QuotaBytes int64
	// Discard stores no message: only the dedup record (and Pending and
	// AutoReplied) is written, so that a delivery the account's rules do
	// not keep is still recognised when it is repeated. Raw may be empty
	// and the quota is not checked. It needs a DedupKey.
	Discard bool
	// Pending names work the caller does once the append is durable: the
	// messages the account's rules generate (forward and redirect copies,
	// an auto-reply). It is written with the dedup record, and a repeated
	// append with the same DedupKey returns what of it is not done yet
	// (AppendResult.Pending): so a delivery retried because that work failed
	// does it then, and one retried after it was done does not do it
	// again (DonePending). It needs a DedupKey.
	Pending []string
	// AutoReplied records that the account sent an RFC 3834 auto-reply
	// to these senders (HasAutoReplied), each for AutoReplyTTL.
	AutoReplied  []string
	AutoReplyTTL time.Duration
	// MustExist refuses the append (an error wrapping ErrNoFolder) when
	// the folder does not exist (IMAP APPEND answers TRYCREATE); without
	// it a delivery into a folder the rules name creates the folder.
	MustExist bool
	// Background: nobody waits for this append but the queue that made
	// the delivery (no client holds a command open for it), so the sync
	// round that makes it durable may wait longer for others to share it
	// (Syncer.Written).
	Background bool
}

// AppendResult says what Append stored.
type AppendResult struct {
	// ID is the message id: a per-account integer in decimal, larger than
	// every id the account had before (like an IMAP UID, RFC 3501 §2.3.1.1).
	ID string
	// Duplicate: the DedupKey was seen before; nothing was written and ID
	// is the id of the first append ("" when it was a Discard).
	Duplicate bool
	// Pending is, for a Duplicate, the work the first append recorded
	// that is not done yet (AppendRequest.Pending, DonePending).
	Pending []string
	// Where a new message went (folder.go): its folder, its UID there,
	// the folder's UIDVALIDITY and the MODSEQ of the append.
	FolderID, UID, UIDValidity uint32
	ModSeq                     uint64
	// Flags are the message's flags as stored (normalised).
	Flags []string
}

// MessageInfo describes a stored message without its bytes.
type MessageInfo struct {
	ID, Folder string
	Size       int64
	// CRLFSize is the size with CRLF line ends (what POP3 sends).
	CRLFSize int64
	Received time.Time
	Flags    []string
	UID      uint32
	// Summary is the stored summary (package summary); nil if none.
	Summary []byte
}

// messageRecord is the stored metadata of a message (m/...). Folder and
// Flags are those of a record written before the folder model (folder.go),
// which Open migrates: then FolderID and UID say where the message is, and
// its flags are in the folder's index.
type messageRecord struct {
	Folder   string    `json:"folder,omitempty"`
	FolderID uint32    `json:"fid,omitempty"`
	UID      uint32    `json:"uid,omitempty"`
	Size     int64     `json:"size"`
	Received time.Time `json:"received"`
	Flags    []string  `json:"flags,omitempty"`
	DedupKey string    `json:"dedup,omitempty"`
	// CRLFSize is the size with CRLF line ends (summary.Summary.CRLFSize:
	// what POP3 sends), computed with the summary; 0 in a record written
	// before it was (then Size, as SMTP stores CRLF only).
	CRLFSize int64 `json:"crlf,omitempty"`
}

// crlfSize is the size with CRLF line ends, Size when not recorded.
func (r messageRecord) crlfSize() int64 {
	if r.CRLFSize > 0 {
		return r.CRLFSize
	}
	return r.Size
}

// mailboxState is an account's s/ record: the next message id, the
// usage, and the folder model's counters (folder.go): the last folder id,
// the last UIDVALIDITY given, and the version of the model (0: written
// before folders existed; Open migrates it). It is written in the same
// batch as every change it counts.
type mailboxState struct {
	next     uint64
	bytes    int64
	count    int64
	folders  uint64
	validity uint64
	version  uint64
}

// modelVersion is the version of the folder model this code writes.
const modelVersion = 1

func (s mailboxState) encode() []byte {
	b := make([]byte, 0, 48)
	b = binary.BigEndian.AppendUint64(b, s.next)
	b = binary.BigEndian.AppendUint64(b, uint64(s.bytes))
	b = binary.BigEndian.AppendUint64(b, uint64(s.count))
	b = binary.BigEndian.AppendUint64(b, s.folders)
	b = binary.BigEndian.AppendUint64(b, s.validity)
	return binary.BigEndian.AppendUint64(b, s.version)
}

func decodeState(v []byte) (mailboxState, error) {
	if len(v) != 24 && len(v) != 48 {
		return mailboxState{}, fmt.Errorf("storage: mailbox state of %d bytes: %w", len(v), ErrDamaged)
	}
	st := mailboxState{
		next:  binary.BigEndian.Uint64(v),
		bytes: int64(binary.BigEndian.Uint64(v[8:])),
		count: int64(binary.BigEndian.Uint64(v[16:])),
	}
	if len(v) == 48 {
		st.folders = binary.BigEndian.Uint64(v[24:])
		st.validity = binary.BigEndian.Uint64(v[32:])
		st.version = binary.BigEndian.Uint64(v[40:])
	}
	return st, nil
}

// mailbox reads, in one snapshot, whether the account exists and its state.
func (p *Partition) mailbox(addr string) (mailboxState, error) {
	var st mailboxState
	err := p.db.view(func(txn *badger.Txn) error {
		if _, err := txn.Get(key(prefixAccount, addr)); err != nil {
			if errors.Is(err, badger.ErrKeyNotFound) {
				return accountNotFound(addr)
			}
			return err
		}
		item, err := txn.Get(key(prefixState, addr))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			st, err = decodeState(v)
			return err
		})
	})
	if st.next == 0 {
		st.next = 1
	}
	return st, err
}

func normalizeFolder(f string) (string, error) {
	if f == "" {
		return Inbox, nil
	}
	return checkFolderName(f)
}

// Append stores a message in account's mailbox and returns once it is
// durable. The metadata, the raw bytes, the dedup record and the updated
// usage are written in one batch. With a DedupKey, Append is idempotent: a
// key seen before (within DedupRetention, even if the message was deleted
// since) returns the first append's ID with Duplicate=true and writes
// nothing. It fails with an error wrapping mail.ErrNotFound if the account
// does not exist, ErrValueTooBig beyond MaxValueBytes, and ErrOverQuota
// when req.QuotaBytes is set and the message would take the mailbox over it
// (checked after the dedup lookup, under the account's lock, so a repeated
// delivery is a duplicate, never "full", and two appends cannot both fit
// into the last free bytes).
func (p *Partition) Append(ctx context.Context, account string, req AppendRequest) (AppendResult, error) {
	res, durable, err := p.append(ctx, account, req, false)
	if err != nil {
		return AppendResult{}, err
	}
	if durable != nil {
		select {
		case err := <-durable:
			if err != nil {
				return AppendResult{}, err
			}
		case <-ctx.Done():
			return AppendResult{}, ctx.Err()
		}
	}
	return res, nil
}

// AppendAsync is Append that returns as soon as the message is written
// (a later Append of the account sees it, and gets the next id), before it
// is durable: durable receives nil once it is synced, or the error that
// stopped it. So one account's deliveries share sync rounds instead of
// taking one each. A duplicate (or a refusal) comes back with a nil
// channel. The caller must not report the message stored before durable
// says so.
func (p *Partition) AppendAsync(ctx context.Context, account string, req AppendRequest) (AppendResult, <-chan error, error) {
	return p.append(ctx, account, req, true)
}

func (p *Partition) append(ctx context.Context, account string, req AppendRequest, async bool) (AppendResult, <-chan error, error) {
	// A sync round about to start waits for this append (Syncer.Writing):
	// reading and summarizing the message is most of its work.
	announced := p.db.announce()
	defer func() {
		if announced {
			p.db.opt.Syncer.NotWritten(1)
		}
	}()
	addr, err := p.account(account)
	if err != nil {
		return AppendResult{}, nil, err
	}
	folder, err := normalizeFolder(req.Folder)
	if err != nil {
		return AppendResult{}, nil, err
	}
	var (
		prefix []byte
		fb     *FileBody
	)
	if req.Body != nil {
		if prefix, fb = fileBodyOf(req.Body); fb == nil {
			if req.Raw, err = mail.ReadBody(req.Body); err != nil {
				return AppendResult{}, nil, fmt.Errorf("storage: append to %s: reading the message: %w", addr, err)
			}
		}
	}
	size := int64(len(req.Raw))
	if fb != nil {
		size = req.Body.Size()
	}
	if size == 0 && !req.Discard {
		return AppendResult{}, nil, fmt.Errorf("%w: append to %s: empty message", ErrInvalidMessage, addr)
	}
	if req.DedupKey == "" && (req.Discard || len(req.Pending) > 0) {
		return AppendResult{}, nil, fmt.Errorf("%w: append to %s: Discard and Pending need a DedupKey", ErrInvalidMessage, addr)
	}
	if len(req.AutoReplied) > 0 && req.AutoReplyTTL <= 0 {
		return AppendResult{}, nil, fmt.Errorf("%w: append to %s: auto-reply records need a TTL", ErrInvalidMessage, addr)
	}
	received := req.Received
	if received.IsZero() {
		received = time.Now()
	}
	flags, err := NormalizeFlags(req.Flags)
	if err != nil {
		return AppendResult{}, nil, err
	}
	var sum []byte
	var crlf int64
	if !req.Discard {
		// Computed once, here, streaming (bodies in files are read, not
		// loaded): FETCH ENVELOPE/BODYSTRUCTURE never parse it again.
		// Reading a body file checks its length and CRC-32C (its reader
		// does, at the end): the only read of the body before it is
		// linked, so a damaged one is refused here (ErrBodyDamaged).
		if sum, crlf, err = summarize(req.Raw, req.Body, fb != nil); err != nil {
			if errors.Is(err, ErrDamaged) {
				return AppendResult{}, nil, fmt.Errorf("storage: append to %s: %w: %w", addr, ErrBodyDamaged, err)
			}
			return AppendResult{}, nil, fmt.Errorf("storage: append to %s: %w", addr, err)
		}
	}
	unlock := p.locks.lock(addr)
	st, fs, cached := p.models.get(addr)
	if !cached {
		if st, fs, err = p.model(addr); err != nil {
			unlock()
			return AppendResult{}, nil, err
		}
	}
	if req.DedupKey != "" {
		v, err := p.db.Get(dedupKey(addr, req.DedupKey))
		switch {
		case err == nil && len(v) == 8:
			defer unlock()
			res := AppendResult{Duplicate: true}
			if n := binary.BigEndian.Uint64(v); n > 0 {
				res.ID = strconv.FormatUint(n, 10)
			}
			if res.Pending, err = p.pending(addr, req.DedupKey); err != nil {
				return AppendResult{}, nil, err
			}
			return res, nil, nil
		case err == nil:
			unlock()
			return AppendResult{}, nil, fmt.Errorf("storage: dedup record of %s: %d bytes: %w", addr, len(v), ErrDamaged)
		case !errors.Is(err, mail.ErrNotFound):
			unlock()
			return AppendResult{}, nil, err
		}
	}
	var b Batch
	for _, sender := range req.AutoReplied {
		b.setTTL(autoReplyKey(addr, sender), []byte{1}, req.AutoReplyTTL)
	}
	if len(req.Pending) > 0 {
		v, err := json.Marshal(req.Pending)
		if err != nil {
			unlock()
			return AppendResult{}, nil, err
		}
		b.setTTL(pendingKey(addr, req.DedupKey), v, DedupRetention)
	}
	if req.Discard {
		b.setTTL(dedupKey(addr, req.DedupKey), binary.BigEndian.AppendUint64(nil, 0), DedupRetention)
		b.announced, announced = announced, false
		b.background = req.Background
		return p.commitAppend(ctx, &b, unlock, AppendResult{}, async)
	}
	// New mail only above the free-space limit (space.go): the queue
	// keeps the message and tries again (a repeated delivery of a stored
	// message is answered above, from the dedup record, whatever the
	// disk).
	if err := p.store.opt.Space.Admit(size); err != nil {
		unlock()
		return AppendResult{}, nil, fmt.Errorf("storage: append to %s: %w", addr, err)
	}
	if req.QuotaBytes > 0 && st.bytes+size > req.QuotaBytes {
		unlock()
		return AppendResult{}, nil, fmt.Errorf("%w: %s uses %d of %d bytes", ErrOverQuota, addr, st.bytes, req.QuotaBytes)
	}
	fs = ensureModel(&b, addr, &st, fs)
	f, ok := folderByName(fs, folder)
	if !ok {
		if req.MustExist {
			unlock()
			return AppendResult{}, nil, folderNotFound(addr, folder)
		}
		f = newFolder(&b, addr, &st, folder, "", time.Now())
	}
	uid := f.UIDNext
	f.UIDNext++
	f.ModSeq++
	f.Messages++
	f.Bytes += size
	if !seen(flags) {
		f.Unseen++
	}
	putFolder(&b, addr, f)
	meta, err := json.Marshal(messageRecord{
		FolderID: f.ID,
		UID:      uid,
		Size:     size,
		Received: received.UTC(),
		DedupKey: req.DedupKey,
		CRLFSize: crlf,
	})
	if err != nil {
		unlock()
		return AppendResult{}, nil, err
	}
	id := st.next
	b.Set(indexKey(addr, f.ID, uid), Entry{UID: uid, ID: id, ModSeq: f.ModSeq, Flags: flags}.encode())
	b.Set(messageKey(prefixSummary, addr, id), sum)
	if fb != nil {
		// The link (or copy) is complete before the batch is submitted:
		// the sync round that makes the record durable covers its name.
		name, err := p.blobs.hold(fb, ownerString(addr, id))
		if err != nil {
			unlock()
			return AppendResult{}, nil, fmt.Errorf("storage: append to %s: %w", addr, err)
		}
		b.Set(messageKey(prefixRaw, addr, id), blobRef{name: name, size: fb.size, crc: fb.crc, prefix: prefix}.encode())
		b.Set(messageKey(prefixFile, addr, id), []byte(name))
	} else {
		b.Set(messageKey(prefixRaw, addr, id), frame(req.Raw))
	}
	st.next++
	st.bytes += size
	st.count++

	b.Set(messageKey(prefixMeta, addr, id), meta)
	b.Set(key(prefixState, addr), st.encode())
	b.model = &modelUpdate{addr: addr, st: st, fs: withFolder(fs, f)}
	if req.DedupKey != "" {
		b.setTTL(dedupKey(addr, req.DedupKey), binary.BigEndian.AppendUint64(nil, id), DedupRetention)
	}
	b.announced, announced = announced, false
	b.background = req.Background
	return p.commitAppend(ctx, &b, unlock, AppendResult{ID: strconv.FormatUint(id, 10),
		FolderID: f.ID, UID: uid, UIDValidity: f.UIDValidity, ModSeq: f.ModSeq, Flags: flags}, async)
}

// withFolder returns fs with f in place of the folder of its id, or
// added at the end (a new folder has the highest id).
func withFolder(fs []Folder, f Folder) []Folder {
	for i := range fs {
		if fs[i].ID == f.ID {
			fs[i] = f
			return fs
		}
	}
	return append(fs, f)
}

// ensureModel gives an account without folders (one created before the
// folder model, with no messages: Open migrated every other) its default
// folders and the model's version, in b.
func ensureModel(b *Batch, addr string, st *mailboxState, fs []Folder) []Folder {
	if st.version >= modelVersion {
		return fs
	}
	fs = defaultFolders(b, addr, st, fs, time.Now())
	st.version = modelVersion
	return fs
}

// summarize computes the summary of a message being appended, and its
// size with CRLF line ends: from raw, or by reading body (a file is
// streamed).
func summarize(raw []byte, body mail.Body, file bool) ([]byte, int64, error) {
	var r io.Reader = bytes.NewReader(raw)
	if file || (raw == nil && body != nil) {
		rc, err := body.Open()
		if err != nil {
			return nil, 0, fmt.Errorf("reading the message: %w", err)
		}
		defer rc.Close()
		r = rc
	}
	s, err := summary.Compute(r)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the message: %w", err)
	}
	b, err := s.Encode()
	return b, s.CRLFSize, err
}

// Delivered reports whether an append with dedupKey was stored (id is
// its message id) or discarded by the rules (id "") within
// DedupRetention, and left no work pending (AppendRequest.Pending): a
// delivery repeated then needs nothing, not even the message's body.
func (p *Partition) Delivered(account, dk string) (id string, ok bool, err error) {
	addr, err := p.account(account)
	if err != nil {
		return "", false, err
	}
	v, err := p.db.Get(dedupKey(addr, dk))
	switch {
	case errors.Is(err, mail.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, err
	case len(v) != 8:
		return "", false, fmt.Errorf("storage: dedup record of %s: %d bytes: %w", addr, len(v), ErrDamaged)
	}
	if left, err := p.pending(addr, dk); err != nil || len(left) > 0 {
		return "", false, err
	}
	if n := binary.BigEndian.Uint64(v); n > 0 {
		id = strconv.FormatUint(n, 10)
	}
	return id, true, nil
}

// commitAppend commits the batch of an append: synchronously, or, when
// async, returning once it is written with the channel that says when it
// is durable.
func (p *Partition) commitAppend(ctx context.Context, b *Batch, unlock func(), res AppendResult, async bool) (AppendResult, <-chan error, error) {
	if !async {
		if err := p.commitLocked(ctx, b, unlock); err != nil {
			return AppendResult{}, nil, err
		}
		return res, nil, nil
	}
	durable, err := p.commitWritten(ctx, b, unlock)
	if err != nil {
		return AppendResult{}, nil, err
	}
	return res, durable, nil
}

// pending reads the work recorded with dedup key k; the caller holds the
// account's lock.
func (p *Partition) pending(addr, k string) ([]string, error) {
	v, err := p.db.Get(pendingKey(addr, k))
	switch {
	case errors.Is(err, mail.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var out []string
	if err := json.Unmarshal(v, &out); err != nil {
		return nil, fmt.Errorf("storage: pending work of %s: %w", addr, err)
	}
	return out, nil
}

// DonePending records that the kinds of work in done, recorded with the
// append of dedupKey, are done: a repeated append no longer returns them,
// and the record goes when nothing is left. It returns once the change is
// written (a later append sees it); the channel (buffer 1) receives nil
// once it is durable. Work that is not recorded is not an error.
func (p *Partition) DonePending(account, dedupKey string, done []string) <-chan error {
	fail := func(err error) <-chan error {
		ch := make(chan error, 1)
		ch <- err
		return ch
	}
	addr, err := p.account(account)
	if err != nil {
		return fail(err)
	}
	unlock := p.locks.lock(addr)
	left, err := p.pending(addr, dedupKey)
	if err != nil {
		unlock()
		return fail(err)
	}
	left = slices.DeleteFunc(left, func(k string) bool { return slices.Contains(done, k) })
	var b Batch
	b.maintenance = true
	if len(left) == 0 {
		b.Delete(pendingKey(addr, dedupKey))
	} else {
		v, err := json.Marshal(left)
		if err != nil {
			unlock()
			return fail(err)
		}
		b.setTTL(pendingKey(addr, dedupKey), v, DedupRetention)
	}
	durable, err := p.commitWritten(context.Background(), &b, unlock)
	if err != nil {
		return fail(err)
	}
	return durable
}

// HasAutoReplied reports whether account sent sender an RFC 3834
// auto-reply that is still remembered (AppendRequest.AutoReplied).
func (p *Partition) HasAutoReplied(account, sender string) (bool, error) {
	addr, err := p.account(account)
	if err != nil {
		return false, err
	}
	_, err = p.db.Get(autoReplyKey(addr, sender))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, mail.ErrNotFound):
		return false, nil
	}
	return false, err
}

// parseMessageID parses a decimal message id; a malformed one names no
// message.
func parseMessageID(addr, id string) (uint64, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n == 0 {
		return 0, messageNotFound(addr, id)
	}
	return n, nil
}

func messageNotFound(addr, id string) error {
	return fmt.Errorf("storage: message %s of %s: %w", id, addr, mail.ErrNotFound)
}

// Raw returns the stored RFC 5322 bytes of message id, checked against
// their frame and the size in the message's metadata (frame.go): an error
// wrapping mail.ErrNotFound when there is no such message, ErrDamaged when
// the bytes do not match, never an empty or damaged message.
func (p *Partition) Raw(account, id string) ([]byte, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, err
	}
	n, err := parseMessageID(addr, id)
	if err != nil {
		return nil, err
	}
	body, err := p.body(addr, id, n)
	if err != nil {
		return nil, err
	}
	raw, err := mail.ReadBody(body)
	if err != nil {
		return nil, fmt.Errorf("storage: message %s of %s: %w", id, addr, err)
	}
	return raw, nil
}

// Body returns message id as a mail.Body, checked like Raw: a message in
// a file is checked here for being there with its length, and its reader
// checks its bytes (an error wrapping ErrDamaged at the end instead of
// io.EOF when they are damaged; Verify reads them all first).
func (p *Partition) Body(account, id string) (mail.Body, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, err
	}
	n, err := parseMessageID(addr, id)
	if err != nil {
		return nil, err
	}
	return p.body(addr, id, n)
}

func (p *Partition) body(addr, id string, n uint64) (mail.Body, error) {
	v, size, err := p.rawMessage(addr, id, n)
	if err != nil {
		return nil, err
	}
	if isRef(v) {
		ref, err := decodeRef(v)
		if err == nil && size >= 0 && size != ref.size+int64(len(ref.prefix)) {
			err = damaged("reference to %d+%d bytes, %d recorded", len(ref.prefix), ref.size, size)
		}
		if err == nil {
			body := p.blobs.body(ref, ownerString(addr, n))
			_, fb := fileBodyOf(body)
			if err = fb.check(); err == nil {
				return body, nil
			}
		}
		return nil, fmt.Errorf("storage: message %s of %s: %w", id, addr, err)
	}
	raw, err := unframe(v, size)
	if err != nil {
		return nil, fmt.Errorf("storage: message %s of %s: %w", id, addr, err)
	}
	return mail.BytesBody(raw), nil
}

// NewBody returns a writer for a body to append to this partition (one
// fetched from another node, or copied from another filesystem): in memory
// up to the inline threshold, a file of the partition beyond it. Append
// with the committed body as AppendRequest.Body takes the file over (for
// the first message; others link it); give a body not appended to
// DiscardBody.
func (p *Partition) NewBody() (mail.BodyWriter, error) { return p.blobs.newWriter(), nil }

// Linkable reports whether b is a body in a file that Append can link
// into this partition (the same filesystem), rather than copy.
func (p *Partition) Linkable(b mail.Body) bool {
	_, fb := fileBodyOf(b)
	if fb == nil {
		return false
	}
	return sameDevice(fb.dir.path, p.blobs.path)
}

// rawMessage reads the stored value of message n's bytes and the size its
// metadata records (-1 when that does not decode), in one snapshot.
func (p *Partition) rawMessage(addr, id string, n uint64) (v []byte, size int64, err error) {
	size = -1
	err = p.db.view(func(txn *badger.Txn) error {
		item, err := txn.Get(messageKey(prefixRaw, addr, n))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return messageNotFound(addr, id)
		}
		if err != nil {
			return err
		}
		if v, err = item.ValueCopy(nil); err != nil {
			return err
		}
		if item, err := txn.Get(messageKey(prefixMeta, addr, n)); err == nil {
			_ = item.Value(func(mv []byte) error {
				var r messageRecord
				if json.Unmarshal(mv, &r) == nil {
					size = r.Size
				}
				return nil
			})
		}
		return nil
	})
	return v, size, err
}

// message reads the metadata of message n; the caller holds the lock.
func (p *Partition) message(addr, id string, n uint64) (messageRecord, error) {
	var r messageRecord
	v, err := p.db.Get(messageKey(prefixMeta, addr, n))
	if errors.Is(err, mail.ErrNotFound) {
		return r, messageNotFound(addr, id)
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("storage: metadata of message %s of %s: %w: %v", id, addr, ErrDamaged, err)
	}
	return r, nil
}

// Usage returns the bytes and the number of messages stored for account,
// or an error wrapping mail.ErrNotFound if it does not exist.
func (p *Partition) Usage(account string) (bytes int64, count int, err error) {
	addr, err := p.account(account)
	if err != nil {
		return 0, 0, err
	}
	st, err := p.mailbox(addr)
	if err != nil {
		return 0, 0, err
	}
	return st.bytes, int(st.count), nil
}
