package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgraph-io/badger/v4"

	"github.com/homing-mail/homing/mail"
)

// The mailbox model IMAP needs (RFC 9051 §2.3.1): an account has folders,
// each with a UIDVALIDITY that never changes while the folder exists (a
// folder deleted and created again, or renamed INBOX, gets another), a
// UIDNEXT, and strictly increasing UIDs that are never reused; every
// change of a message in a folder (append, flags, expunge) takes the
// folder's next MODSEQ (RFC 7162), so HIGHESTMODSEQ says whether anything
// changed. A message keeps its account-wide id (the admin API's) for its
// life, also when it moves to another folder (where it gets a new UID).
//
// Records (keys.go):
//
//	g/<addr>\0<fid:4>              the folder (folderrecord.go; JSON before)
//	u/<addr>\0<fid:4><uid:4>       the folder's index: message id, modseq, flags
//	h/<addr>\0<id:8>               the message's summary (package summary)
//
// SELECT reads only the index of a folder (small values, in UID order);
// FETCH ENVELOPE and BODYSTRUCTURE read the summaries.

// Special-use folders (RFC 6154) every account has from its creation.
var specialFolders = []struct{ name, use string }{
	{"Sent", `\Sent`},
	{"Drafts", `\Drafts`},
	{"Trash", `\Trash`},
	{"Junk", `\Junk`},
	{"Archive", `\Archive`},
}

// SpecialUses are the special-use attributes (RFC 6154 §2) a folder may
// have.
var SpecialUses = []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`}

// Delimiter is the hierarchy delimiter of folder names (RFC 9051 §5.1).
const Delimiter = "/"

// Folder is one folder of an account.
type Folder struct {
	ID          uint32
	Name        string
	UIDValidity uint32
	UIDNext     uint32
	// ModSeq is the folder's highest MODSEQ (RFC 7162 HIGHESTMODSEQ).
	ModSeq     uint64
	SpecialUse string // `\Sent`, ...; "" for none
	Subscribed bool
	// Messages, Unseen and Bytes count the folder's messages, those
	// without \Seen, and their sizes.
	Messages, Unseen, Bytes int64
}

// folderRecord is a folder record as JSON, the form before
// folderrecord.go's: still read.
type folderRecord struct {
	Name        string `json:"name"`
	UIDValidity uint32 `json:"uidValidity"`
	UIDNext     uint32 `json:"uidNext"`
	ModSeq      uint64 `json:"modSeq"`
	SpecialUse  string `json:"specialUse,omitempty"`
	Subscribed  bool   `json:"subscribed,omitempty"`
	Messages    int64  `json:"messages"`
	Unseen      int64  `json:"unseen"`
	Bytes       int64  `json:"bytes"`
}

func folderFrom(id uint32, r folderRecord) Folder {
	return Folder{ID: id, Name: r.Name, UIDValidity: r.UIDValidity, UIDNext: r.UIDNext, ModSeq: r.ModSeq,
		SpecialUse: r.SpecialUse, Subscribed: r.Subscribed, Messages: r.Messages, Unseen: r.Unseen, Bytes: r.Bytes}
}

func folderKey(addr string, fid uint32) []byte {
	return binary.BigEndian.AppendUint32(accountPrefix(prefixFolder, addr), fid)
}

func indexPrefix(addr string, fid uint32) []byte {
	return binary.BigEndian.AppendUint32(accountPrefix(prefixIndex, addr), fid)
}

func indexKey(addr string, fid, uid uint32) []byte {
	return binary.BigEndian.AppendUint32(indexPrefix(addr, fid), uid)
}

// Entry is one message in a folder's index.
type Entry struct {
	UID    uint32
	ID     uint64 // the account-wide message id
	ModSeq uint64
	Flags  []string
}

func (e Entry) encode() []byte {
	v := make([]byte, 16, 16+32)
	binary.BigEndian.PutUint64(v, e.ID)
	binary.BigEndian.PutUint64(v[8:], e.ModSeq)
	return append(v, strings.Join(e.Flags, " ")...)
}

func decodeEntry(uid uint32, v []byte) (Entry, error) {
	if len(v) < 16 {
		return Entry{}, fmt.Errorf("storage: index entry of %d bytes: %w", len(v), ErrDamaged)
	}
	e := Entry{UID: uid, ID: binary.BigEndian.Uint64(v), ModSeq: binary.BigEndian.Uint64(v[8:])}
	if len(v) > 16 {
		e.Flags = strings.Split(string(v[16:]), " ")
	}
	return e, nil
}

// Seen reports whether flags has \Seen.
func seen(flags []string) bool { return hasFlag(flags, `\Seen`) }

func hasFlag(flags []string, f string) bool {
	return slices.ContainsFunc(flags, func(x string) bool { return strings.EqualFold(x, f) })
}

// System flags (RFC 9051 §2.3.2) in their canonical spelling.
var systemFlags = []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`}

// maxFlagBytes bounds one keyword; maxFlags the flags of one message.
const (
	maxFlagBytes = 128
	maxFlags     = 64
)

// NormalizeFlags returns flags with system flags in their canonical
// spelling, duplicates (case-insensitive) and \Recent (RFC 9051 dropped
// it; it is never stored) removed, or an error wrapping mail.ErrInvalid
// for a flag that cannot be one (RFC 9051 §9: flag-keyword is an atom).
func NormalizeFlags(flags []string) ([]string, error) {
	var out []string
	for _, f := range flags {
		if strings.EqualFold(f, `\Recent`) {
			continue
		}
		if strings.HasPrefix(f, `\`) {
			i := slices.IndexFunc(systemFlags, func(s string) bool { return strings.EqualFold(s, f) })
			if i < 0 {
				return nil, fmt.Errorf("%w: flag %q is not a system flag", mail.ErrInvalid, f)
			}
			f = systemFlags[i]
		} else if err := checkKeyword(f); err != nil {
			return nil, err
		}
		if !hasFlag(out, f) {
			out = append(out, f)
		}
	}
	if len(out) > maxFlags {
		return nil, fmt.Errorf("%w: %d flags (at most %d)", mail.ErrInvalid, len(out), maxFlags)
	}
	return out, nil
}

// checkKeyword: RFC 9051 §9, atom = 1*ATOM-CHAR, without the
// resp-specials ']'.
func checkKeyword(f string) error {
	if f == "" || len(f) > maxFlagBytes {
		return fmt.Errorf("%w: flag of %d bytes", mail.ErrInvalid, len(f))
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return fmt.Errorf("%w: flag %q", mail.ErrInvalid, f)
		}
	}
	return nil
}

// checkFolderName: RFC 9051 §5.1: names are UTF-8 (IMAP4rev2; the IMAP
// layer converts modified UTF-7), "/" separates levels, no empty level.
func checkFolderName(name string) (string, error) {
	if strings.EqualFold(name, Inbox) {
		return Inbox, nil
	}
	switch {
	case name == "" || len(name) > maxFolderBytes || !utf8.ValidString(name):
		return "", fmt.Errorf("%w: folder name %q", mail.ErrInvalid, name)
	case strings.HasPrefix(name, Delimiter) || strings.HasSuffix(name, Delimiter) || strings.Contains(name, Delimiter+Delimiter):
		return "", fmt.Errorf("%w: folder name %q has an empty level", mail.ErrInvalid, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '*' || r == '%' {
			return "", fmt.Errorf("%w: folder name %q has a control or wildcard character", mail.ErrInvalid, name)
		}
	}
	// INBOX/child is spelt with INBOX in capitals.
	if lvl, rest, ok := strings.Cut(name, Delimiter); ok && strings.EqualFold(lvl, Inbox) {
		name = Inbox + Delimiter + rest
	}
	return name, nil
}

func folderNotFound(addr, name string) error {
	return fmt.Errorf("storage: folder %q of %s: %w (%w)", name, addr, ErrNoFolder, mail.ErrNotFound)
}

// folders reads every folder of addr, by id.
// folders reads the folder records of addr, whose state is st.
//
// Every folder's id is one the state's counter gave (newFolder), so they
// are read by looking up ids 1 to st.folders, not by a scan of the
// prefix: a folder record is rewritten with every message stored in it,
// and badger keeps each version until a compaction drops it, which an
// iterator steps over one by one; a lookup finds the newest directly.
// (With the scan, APPEND to a 100,000-message folder took 4x as long as
// to an empty one: 742/s then 172/s.) Accounts that made very many
// folders, and those of a model before the counter, are scanned.
func (p *Partition) folders(addr string, st mailboxState) ([]Folder, error) {
	if st.version < modelVersion || st.folders == 0 || st.folders > maxFolderLookups {
		return p.scanFolders(addr)
	}
	var out []Folder
	err := p.db.view(func(txn *badger.Txn) error {
		for id := uint32(1); uint64(id) <= st.folders; id++ {
			item, err := txn.Get(folderKey(addr, id))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue // deleted
			}
			if err != nil {
				return err
			}
			var f Folder
			if err := item.Value(func(v []byte) (err error) { f, err = decodeFolder(id, v); return err }); err != nil {
				return fmt.Errorf("%w (account %s)", err, addr)
			}
			out = append(out, f)
		}
		return nil
	})
	return out, err
}

// maxFolderLookups: an account whose counter passed this many folders is
// scanned instead.
const maxFolderLookups = 4096

func (p *Partition) scanFolders(addr string) ([]Folder, error) {
	prefix := accountPrefix(prefixFolder, addr)
	var out []Folder
	err := p.db.Scan(prefix, func(k, v []byte) error {
		if len(k) != len(prefix)+4 {
			return fmt.Errorf("storage: bad folder key %q: %w", k, ErrDamaged)
		}
		f, err := decodeFolder(binary.BigEndian.Uint32(k[len(prefix):]), v)
		if err != nil {
			return fmt.Errorf("%w (account %s)", err, addr)
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// folderByName finds a folder among fs (INBOX in any case).
func folderByName(fs []Folder, name string) (Folder, bool) {
	for _, f := range fs {
		if f.Name == name || (name == Inbox && strings.EqualFold(f.Name, Inbox)) {
			return f, true
		}
	}
	return Folder{}, false
}

// Folders returns the folders of account, sorted by name (INBOX first).
// It fails with an error wrapping mail.ErrNotFound if there is no such
// account.
func (p *Partition) Folders(account string) ([]Folder, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, err
	}
	st, err := p.mailbox(addr)
	if err != nil {
		return nil, err
	}
	fs, err := p.folders(addr, st)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(fs, func(a, b Folder) int {
		switch {
		case a.Name == Inbox:
			return -1
		case b.Name == Inbox:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return fs, nil
}

// Folder returns one folder by name, or an error wrapping ErrNoFolder.
func (p *Partition) Folder(account, name string) (Folder, error) {
	addr, err := p.account(account)
	if err != nil {
		return Folder{}, err
	}
	name, err = checkFolderName(name)
	if err != nil {
		return Folder{}, err
	}
	st, err := p.mailbox(addr)
	if err != nil {
		return Folder{}, err
	}
	fs, err := p.folders(addr, st)
	if err != nil {
		return Folder{}, err
	}
	f, ok := folderByName(fs, name)
	if !ok {
		return Folder{}, folderNotFound(addr, name)
	}
	return f, nil
}

// newFolder adds a folder to b and st (the caller holds the lock and
// commits b with st).
func newFolder(b *Batch, addr string, st *mailboxState, name, use string, now time.Time) Folder {
	st.folders++
	// RFC 9051 §2.3.1.1: a new UIDVALIDITY for every new folder, larger
	// than every one before (a time stamp, unless that went backwards).
	st.validity = max(st.validity+1, uint64(uint32(now.Unix())))
	f := Folder{ID: uint32(st.folders), Name: name, UIDValidity: uint32(st.validity), UIDNext: 1, ModSeq: 1,
		SpecialUse: use, Subscribed: true}
	putFolder(b, addr, f)
	return f
}

func putFolder(b *Batch, addr string, f Folder) {
	b.Set(folderKey(addr, f.ID), encodeFolder(f))
}

// defaultFolders adds INBOX and the special-use folders to a new account.
func defaultFolders(b *Batch, addr string, st *mailboxState, have []Folder, now time.Time) []Folder {
	out := append([]Folder(nil), have...)
	if _, ok := folderByName(out, Inbox); !ok {
		out = append(out, newFolder(b, addr, st, Inbox, "", now))
	}
	for _, s := range specialFolders {
		if _, ok := folderByName(out, s.name); !ok {
			out = append(out, newFolder(b, addr, st, s.name, s.use, now))
		}
	}
	return out
}

// CreateFolder creates a folder (RFC 9051 §6.3.4) with an optional
// special use (RFC 6154 §5, CREATE-SPECIAL-USE). It returns once the folder
// is written; durable says when it is synced. It fails with an error
// wrapping mail.ErrExists if the folder exists, mail.ErrInvalid for a bad
// name or use.
func (p *Partition) CreateFolder(ctx context.Context, account, name, use string) (Folder, <-chan error, error) {
	addr, err := p.account(account)
	if err != nil {
		return Folder{}, nil, err
	}
	if name, err = checkFolderName(name); err != nil {
		return Folder{}, nil, err
	}
	if use != "" && !slices.Contains(SpecialUses, use) {
		return Folder{}, nil, fmt.Errorf("%w: special use %q", ErrUseNotSupported, use)
	}
	unlock := p.locks.lock(addr)
	st, fs, err := p.model(addr)
	if err != nil {
		unlock()
		return Folder{}, nil, err
	}
	if _, ok := folderByName(fs, name); ok {
		unlock()
		return Folder{}, nil, fmt.Errorf("storage: folder %q of %s: %w", name, addr, mail.ErrExists)
	}
	var b Batch
	f := newFolder(&b, addr, &st, name, use, time.Now())
	b.Set(key(prefixState, addr), st.encode())
	durable, err := p.commitWritten(ctx, &b, unlock)
	return f, durable, err
}

// SubscribeFolder sets whether a folder is subscribed (RFC 9051 §6.3.7).
func (p *Partition) SubscribeFolder(ctx context.Context, account, name string, on bool) (<-chan error, error) {
	return p.changeFolder(ctx, account, name, func(f *Folder) { f.Subscribed = on })
}

func (p *Partition) changeFolder(ctx context.Context, account, name string, fn func(*Folder)) (<-chan error, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, err
	}
	if name, err = checkFolderName(name); err != nil {
		return nil, err
	}
	unlock := p.locks.lock(addr)
	_, fs, err := p.model(addr)
	if err != nil {
		unlock()
		return nil, err
	}
	f, ok := folderByName(fs, name)
	if !ok {
		unlock()
		return nil, folderNotFound(addr, name)
	}
	fn(&f)
	var b Batch
	b.maintenance = true // changes a record only
	putFolder(&b, addr, f)
	return p.commitWritten(ctx, &b, unlock)
}

// model reads an account's state and folders under its lock; an account
// that has not been migrated to the model yet is refused (Open migrates
// every account).
func (p *Partition) model(addr string) (mailboxState, []Folder, error) {
	st, err := p.mailbox(addr)
	if err != nil {
		return st, nil, err
	}
	fs, err := p.folders(addr, st)
	return st, fs, err
}

// FolderEntries returns the index of folder fid in UID order.
func (p *Partition) FolderEntries(account string, fid uint32) ([]Entry, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, err
	}
	prefix := indexPrefix(addr, fid)
	var out []Entry
	err = p.db.Scan(prefix, func(k, v []byte) error {
		if len(k) != len(prefix)+4 {
			return fmt.Errorf("storage: bad index key %q: %w", k, ErrDamaged)
		}
		e, err := decodeEntry(binary.BigEndian.Uint32(k[len(prefix):]), v)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// Summary returns the stored summary of message id (package summary), or
// an error wrapping mail.ErrNotFound.
func (p *Partition) Summary(account string, id uint64) ([]byte, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, err
	}
	v, err := p.db.Get(messageKey(prefixSummary, addr, id))
	if errors.Is(err, mail.ErrNotFound) {
		return nil, messageNotFound(addr, fmt.Sprint(id))
	}
	return v, err
}

// MessageMeta is what FETCH needs of a message besides its index entry.
type MessageMeta struct {
	ID       uint64
	Size     int64
	CRLFSize int64 // the size with CRLF line ends (what POP3 sends)
	Received time.Time
	Summary  []byte // nil unless asked for
}

// MessageSummaries returns the stored summaries of messages ids, in the
// order of ids (nil for a message that has none, or no longer exists),
// in one read transaction: what a FETCH of ENVELOPE or BODYSTRUCTURE
// reads when the sizes and dates are known already (the account actor
// keeps them, actors/metacache.go).
func (p *Partition) MessageSummaries(account string, ids []uint64) ([][]byte, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(ids))
	if dense(ids) {
		return out, p.db.view(func(txn *badger.Txn) error { return scanSummaries(txn, addr, ids, out) })
	}
	err = p.db.view(func(txn *badger.Txn) error {
		key := accountPrefix(prefixSummary, addr)
		n := len(key)
		for i, id := range ids {
			key = binary.BigEndian.AppendUint64(key[:n], id)
			item, err := txn.Get(key)
			switch {
			case err == nil:
				if out[i], err = item.ValueCopy(nil); err != nil {
					return err
				}
			case !errors.Is(err, badger.ErrKeyNotFound):
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// dense: ids ascend and cover at least half of the ids between the first
// and the last, as those of a FETCH of a range of a folder do: one pass of
// an iterator over their keys costs less than a lookup of each (a lookup
// searches every level of the tree; the iterator steps to the next key).
func dense(ids []uint64) bool {
	if len(ids) < 8 {
		return false
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			return false
		}
	}
	return ids[len(ids)-1]-ids[0] < 2*uint64(len(ids))
}

// scanSummaries reads the summaries of ascending ids in one pass over the
// keys from the first to the last.
func scanSummaries(txn *badger.Txn, addr string, ids []uint64, out [][]byte) error {
	prefix := accountPrefix(prefixSummary, addr)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	i := 0
	for it.Seek(messageKey(prefixSummary, addr, ids[0])); it.Valid() && i < len(ids); it.Next() {
		k := it.Item().Key()
		if len(k) != len(prefix)+8 {
			continue
		}
		id := binary.BigEndian.Uint64(k[len(prefix):])
		for i < len(ids) && ids[i] < id {
			i++ // none stored
		}
		if i == len(ids) {
			break
		}
		if ids[i] == id {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[i] = v
			i++
		}
	}
	return nil
}

// MessageMeta returns the size, internal date and (summaries) summary of
// messages ids; ids that do not exist are skipped. It reads them all in
// one read transaction (a FETCH asks for hundreds at a time).
func (p *Partition) MessageMeta(account string, ids []uint64, summaries bool) ([]MessageMeta, error) {
	addr, err := p.account(account)
	if err != nil {
		return nil, err
	}
	out := make([]MessageMeta, 0, len(ids))
	err = p.db.view(func(txn *badger.Txn) error {
		for _, id := range ids {
			item, err := txn.Get(messageKey(prefixMeta, addr, id))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			var rec struct { // of messageRecord, only what FETCH needs
				Size     int64     `json:"size"`
				Received time.Time `json:"received"`
				CRLFSize int64     `json:"crlf,omitempty"`
			}
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return fmt.Errorf("storage: metadata of message %d of %s: %w: %v", id, addr, ErrDamaged, err)
			}
			m := MessageMeta{ID: id, Size: rec.Size, CRLFSize: messageRecord{Size: rec.Size, CRLFSize: rec.CRLFSize}.crlfSize(), Received: rec.Received}
			if summaries {
				item, err := txn.Get(messageKey(prefixSummary, addr, id))
				switch {
				case err == nil:
					if m.Summary, err = item.ValueCopy(nil); err != nil {
						return err
					}
				case !errors.Is(err, badger.ErrKeyNotFound):
					return err
				}
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
