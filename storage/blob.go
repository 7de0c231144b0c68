package storage

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/homing-mail/homing/mail"
)

// Body files.
//
// A body larger than the inline threshold (Options.InlineBodyBytes, 64
// KiB by default) is not stored in badger: it is a file of its own in the
// store's bodies directory (<queue dir>/bodies, <partition dir>/bodies:
// inside the badger directory, so under its lock, on its filesystem and
// fenced with it), written with write(2), never through a mapping, so a
// full disk is an error of the write and never SIGBUS; each piece claims
// its bytes from the filesystem's free-space guard first (space.go), so
// that bodies stop above what the stores need for their own writes. The record that
// stores the message (the queue's b/<id>, a mailbox's r/<addr>\0<id>)
// holds a reference instead of the bytes (refHeader below): the file's
// name, its length and its CRC-32C, and the header fields the holder adds
// in front of it (a prefix, read back with mail.Prepend). An index
// record, f/<id> in the queue and f/<addr>\0<id> in a partition, names the
// file, so that deleting a message and finding orphans read no body.
//
// Writing: an SMTP session writes DATA into a BodyWriter (NewBody), which
// keeps up to the inline threshold in memory (the common small message
// never creates a file) and then writes the file as the bytes arrive,
// with the CRC computed on the way. Commit returns the body; the store
// that made it takes it over (adopts the file) when a record first
// references it. A mailbox that stores a body of the queue on the same
// filesystem makes a hard link in its own directory (one inode, one copy
// of the bytes for the queue and every local mailbox: the filesystem's link
// count is the reference count, and each holder unlinks only its own name);
// across filesystems it copies the file (streaming, verified).
//
// Durability. The file is complete (every write(2) returned) before the
// batch with its reference is submitted. With a shared Syncer (--sync
// syncfs) the syncfs(2) round that makes the reference durable starts
// after that, and syncfs writes back every dirty page of the filesystem
// and then commits its journal (fs/sync.c: sync_inodes_sb, then the
// filesystem's sync_fs, which on ext4 forces a jbd2 commit and a cache
// flush): the file's data, its inode and the new directory entry (a
// create or a link is journaled metadata of the running transaction, and
// data=ordered writes the data blocks first) are on disk when the
// reference is. In per-DB mode (--sync fsync) the file is fsynced and its
// directory fsynced before the batch is submitted.
//
// Deleting: the record (and its index) goes first; only once that is
// durable is the name unlinked. A crash in between, or one between
// writing a file and committing the record that would reference it,
// leaves an orphan: a file no index names. Opening the store removes
// orphans (removeOrphans), and `homing check` reports them.
//
// Reading verifies: Open returns a reader that counts and checksums the
// bytes and, at the end, returns an error wrapping ErrDamaged instead of
// io.EOF when the length or the CRC-32C differ from the reference (a
// streaming reader cannot know sooner). A missing file, or one of the
// wrong size, is found at once (the queue holds its message as damaged
// before any attempt). A consumer that streams a body must treat that
// last error as a failure of the whole body: the relay then drops the
// connection without the final dot.

// DefaultInlineBodyBytes is the largest body kept in badger when
// Options.InlineBodyBytes is 0.
const DefaultInlineBodyBytes = 64 << 10

// bodiesDir is the name of a store's directory of body files, inside its
// badger directory.
const bodiesDir = "bodies"

// blobDir is the directory of a store's body files.
type blobDir struct {
	path   string
	fsync  bool // per-DB sync mode: fsync files and the directory before a record references them
	inline int  // the inline threshold
	log    *slog.Logger
	space  *Space // the filesystem's free-space guard; nil: none
}

func openBlobDir(dbDir string, opt Options) (*blobDir, error) {
	d := &blobDir{path: filepath.Join(dbDir, bodiesDir), fsync: opt.Syncer == nil, inline: opt.InlineBodyBytes, log: opt.Logger,
		space: opt.Space}
	if err := os.Mkdir(d.path, 0o700); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return d, nil
	}
	if d.fsync {
		if err := syncDir(dbDir); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *blobDir) file(name string) string { return filepath.Join(d.path, name) }

// newBlobName is a fresh file name: 128 random bits in hex.
func newBlobName() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// validBlobName reports whether name is one newBlobName makes.
func validBlobName(name string) bool {
	if len(name) != 32 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// syncIfNeeded makes a new name in d durable in per-DB sync mode.
func (d *blobDir) syncIfNeeded() error {
	if !d.fsync {
		return nil
	}
	return syncDir(d.path)
}

// remove unlinks name; a missing file is not an error.
func (d *blobDir) remove(name string) {
	if name == "" {
		return
	}
	if err := os.Remove(d.file(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("storage: removing a body file", "file", d.file(name), "err", err)
	}
}

// FileBody is a message body stored in a file of a store (see above). It
// is immutable and safe for concurrent use; each Open reads the file
// afresh and verifies it.
type FileBody struct {
	dir  *blobDir
	name string
	size int64
	crc  uint32

	mu sync.Mutex
	// owner is the record that holds this name ("" while no record
	// does: a body fresh from a BodyWriter, which the store adopts when
	// it first stores it, and DiscardBody removes otherwise).
	owner string
}

// Size implements mail.Body.
func (b *FileBody) Size() int64 { return b.size }

// Path is the file's name, for a reader that needs one (a hard link, a
// filter). Its bytes are checked only by Open's reader and Verify.
func (b *FileBody) Path() string { return b.dir.file(b.name) }

// CRC is the CRC-32C (Castagnoli) of the bytes.
func (b *FileBody) CRC() uint32 { return b.crc }

// Open implements mail.Body: a reader that returns, instead of io.EOF, an
// error wrapping ErrDamaged when the bytes differ in length or checksum
// from what was stored, and such an error at once when the file is gone.
func (b *FileBody) Open() (io.ReadCloser, error) {
	f, err := os.Open(b.Path())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, damaged("body file %s is missing", b.Path())
		}
		return nil, err
	}
	return &fileReader{f: f, b: b}, nil
}

// check looks at the file without reading it: it exists and has the
// stored length.
func (b *FileBody) check() error {
	fi, err := os.Stat(b.Path())
	switch {
	case errors.Is(err, os.ErrNotExist):
		return damaged("body file %s is missing", b.Path())
	case err != nil:
		return err
	case fi.Size() != b.size:
		return damaged("body file %s has %d bytes, %d stored", b.Path(), fi.Size(), b.size)
	}
	return nil
}

// Verify reads the whole file and checks its length and CRC-32C.
func (b *FileBody) Verify() error {
	r, err := b.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(io.Discard, r)
	return err
}

// ReadAt reads the raw bytes at off (no check: a reader of pieces checks
// the whole against Size and CRC, as a fetch over the cluster channel
// does). It returns io.EOF at the end like io.ReaderAt.
func (b *FileBody) ReadAt(p []byte, off int64) (int, error) {
	f, err := os.Open(b.Path())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, damaged("body file %s is missing", b.Path())
		}
		return 0, err
	}
	defer f.Close()
	return f.ReadAt(p, off)
}

// fileReader verifies a FileBody as it is read.
type fileReader struct {
	f   *os.File
	b   *FileBody
	n   int64
	crc uint32
	err error
}

func (r *fileReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.f.Read(p)
	r.n += int64(n)
	r.crc = crc32.Update(r.crc, castagnoli, p[:n])
	if r.n > r.b.size {
		r.err = damaged("body file %s is longer than the %d bytes stored", r.b.Path(), r.b.size)
		return 0, r.err
	}
	if err == io.EOF {
		switch {
		case r.n != r.b.size:
			r.err = damaged("body file %s has %d bytes, %d stored", r.b.Path(), r.n, r.b.size)
		case r.crc != r.b.crc:
			r.err = damaged("body file %s: CRC-32C mismatch: stored %08x, computed %08x", r.b.Path(), r.b.crc, r.crc)
		default:
			r.err = io.EOF
		}
		return n, r.err
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

func (r *fileReader) Close() error { return r.f.Close() }

// fileBodyOf returns the FileBody inside b (under a prefix) and the prefix.
func fileBodyOf(b mail.Body) (head []byte, fb *FileBody) {
	head, rest := mail.SplitPrefix(b)
	fb, _ = rest.(*FileBody)
	return head, fb
}

// IsFileBody reports whether b (or the body under its prefix) is stored
// in a file.
func IsFileBody(b mail.Body) bool {
	_, fb := fileBodyOf(b)
	return fb != nil
}

// VerifyBody reads a body stored in a file and checks it (length and
// CRC-32C: an error wrapping ErrDamaged); any other body is not read.
func VerifyBody(b mail.Body) error {
	if _, fb := fileBodyOf(b); fb != nil {
		return fb.Verify()
	}
	return nil
}

// BodyFile returns the file of a body stored in one, with its length and
// CRC-32C, and the prefix in front of it; ok is false for any other body.
func BodyFile(b mail.Body) (head []byte, fb *FileBody, ok bool) {
	head, fb = fileBodyOf(b)
	return head, fb, fb != nil
}

// DiscardBody removes the file of a body that came from a BodyWriter and
// that no record holds (a message refused after DATA, a transfer that
// was a duplicate). Any other body is left alone: a body a record holds
// is removed with the record.
func DiscardBody(b mail.Body) {
	_, fb := fileBodyOf(b)
	if fb == nil {
		return
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.owner == "" {
		fb.owner = "\x00discarded"
		fb.dir.remove(fb.name)
	}
}

// hold returns the name under which d keeps fb's bytes for the record
// owner: fb's own file when it is in d and no record holds it yet (it is
// adopted) or owner already holds it; otherwise a hard link to it made in
// d, or a verified copy when the link is impossible (another
// filesystem). The new name is durable in per-DB sync mode.
func (d *blobDir) hold(fb *FileBody, owner string) (string, error) {
	fb.mu.Lock()
	if fb.dir.path == d.path && (fb.owner == "" || fb.owner == owner) {
		fb.owner = owner
		fb.mu.Unlock()
		return fb.name, nil
	}
	fb.mu.Unlock()
	name := newBlobName()
	err := os.Link(fb.Path(), d.file(name))
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist):
		return "", damaged("body file %s is missing", fb.Path())
	case linkImpossible(err):
		if err := d.copyFrom(fb, name); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("storage: linking a body: %w", err)
	}
	if err := d.syncIfNeeded(); err != nil {
		d.remove(name)
		return "", err
	}
	return name, nil
}

// linkImpossible reports whether a link failed because the filesystems
// (or the filesystem) cannot have one, so a copy is the way.
func linkImpossible(err error) bool {
	return errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) ||
		errors.Is(err, syscall.EMLINK) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP)
}

// copyFrom copies fb into a new file name of d, verifying what it reads.
func (d *blobDir) copyFrom(fb *FileBody, name string) error {
	r, err := fb.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := d.space.claimBody(fb.size); err != nil {
		return err
	}
	defer d.space.release(fb.size)
	f, err := os.OpenFile(d.file(name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("storage: %w", noSpaceErr(err))
	}
	_, err = io.CopyBuffer(f, r, make([]byte, 64<<10))
	if err == nil && d.fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		d.remove(name)
		return fmt.Errorf("storage: copying a body: %w", noSpaceErr(err))
	}
	return nil
}

// noSpaceErr makes a filesystem's "no space" (ENOSPC, or EDQUOT: over a
// quota) an error that also wraps ErrNoSpace, which every caller knows.
func noSpaceErr(err error) error {
	if err != nil && !errors.Is(err, ErrNoSpace) && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// NewBody returns a writer for a new body of this store: up to the inline
// threshold it stays in memory, beyond it it goes to a file of d. See
// bodyWriter.
func (d *blobDir) newWriter() *bodyWriter { return &bodyWriter{dir: d} }

// bodyWriter is the mail.BodyWriter of a store: it keeps up to the inline
// threshold in memory, and beyond it writes a file of the store with
// write(2) in pieces of at most that size, computing the length and
// CRC-32C as it goes. Commit returns a mail.BytesBody or a *FileBody (in
// per-DB sync mode the file is fsynced first). It holds at most about
// twice the threshold whatever the body's size.
type bodyWriter struct {
	dir  *blobDir
	buf  []byte
	f    *os.File
	name string
	n    int64
	crc  uint32
	err  error
	done bool
}

var errWriterDone = errors.New("storage: body writer already committed or aborted")

func (w *bodyWriter) Write(p []byte) (int, error) {
	switch {
	case w.done:
		return 0, errWriterDone
	case w.err != nil:
		return 0, w.err
	}
	w.n += int64(len(p))
	w.crc = crc32.Update(w.crc, castagnoli, p)
	if w.f == nil {
		if len(w.buf)+len(p) <= w.dir.inline {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		if err := w.create(); err != nil {
			w.err = err
			return 0, err
		}
	}
	if err := w.writeFile(p); err != nil {
		w.err = fmt.Errorf("storage: writing a body file: %w", noSpaceErr(err))
		// Nothing of a body that failed is kept: the file goes now, not
		// when the caller aborts.
		w.discard()
		return 0, w.err
	}
	return len(p), nil
}

// create opens the file and gives the buffer the inline threshold's
// capacity (its coalescing buffer from now on).
func (w *bodyWriter) create() error {
	w.name = newBlobName()
	f, err := os.OpenFile(w.dir.file(w.name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("storage: creating a body file: %w", noSpaceErr(err))
	}
	w.f = f
	if cap(w.buf) < w.dir.inline {
		w.buf = append(make([]byte, 0, w.dir.inline), w.buf...)
	}
	return nil
}

// writeFile appends p to the file through the buffer: small writes are
// gathered into one write(2), large ones go straight through.
func (w *bodyWriter) writeFile(p []byte) error {
	if len(w.buf)+len(p) <= cap(w.buf) {
		w.buf = append(w.buf, p...)
		return nil
	}
	if err := w.flush(); err != nil {
		return err
	}
	if len(p) >= cap(w.buf) {
		return w.out(p)
	}
	w.buf = append(w.buf, p...)
	return nil
}

func (w *bodyWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.out(w.buf)
	w.buf = w.buf[:0]
	return err
}

// out writes p to the file once the free-space guard has room for it
// (space.go: a body stops above the floor the stores need).
func (w *bodyWriter) out(p []byte) error {
	if err := w.dir.space.claimBody(int64(len(p))); err != nil {
		return err
	}
	_, err := w.f.Write(p)
	w.dir.space.release(int64(len(p)))
	return err
}

// Commit implements mail.BodyWriter.
func (w *bodyWriter) Commit() (mail.Body, error) {
	if w.done {
		return nil, errWriterDone
	}
	w.done = true
	if w.err != nil {
		w.discard()
		return nil, w.err
	}
	if w.f == nil {
		body := mail.BytesBody(w.buf)
		w.buf = nil
		return body, nil
	}
	err := w.flush()
	w.buf = nil
	if err == nil && w.dir.fsync {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.dir.syncIfNeeded()
	}
	if err != nil {
		w.dir.remove(w.name)
		return nil, fmt.Errorf("storage: writing a body file: %w", noSpaceErr(err))
	}
	return &FileBody{dir: w.dir, name: w.name, size: w.n, crc: w.crc}, nil
}

// Abort implements mail.BodyWriter.
func (w *bodyWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.discard()
}

func (w *bodyWriter) discard() {
	w.buf = nil
	if w.f != nil {
		_ = w.f.Close()
		w.dir.remove(w.name)
		w.f = nil
	}
}

// References.
//
// A record that holds a body stored in a file has this value instead of
// a frame (frame.go); the magic's third byte tells them apart:
//
//	offset  size  field
//	0       1     magic 0x89
//	1       2     "HR" (Homing Reference)
//	3       1     version, 1
//	4       8     length of the file in bytes, big-endian
//	12      4     CRC-32C of the file, big-endian
//	16      4     CRC-32C of the bytes from offset 20 to the end
//	20      1     length n of the file's name
//	21      n     the file's name (in the store's bodies directory)
//	21+n    ...   the prefix: header fields read in front of the file
//
// So a reference checks itself (a damaged name or prefix is an error
// wrapping ErrDamaged, like a damaged frame) and the file it names.
const refHeaderLen = 21

// blobRef is a decoded reference.
type blobRef struct {
	name   string
	size   int64
	crc    uint32
	prefix []byte
}

func (r blobRef) encode() []byte {
	v := make([]byte, refHeaderLen, refHeaderLen+len(r.name)+len(r.prefix))
	v[0], v[1], v[2], v[3] = frameMagic, 'H', 'R', frameVersion
	binary.BigEndian.PutUint64(v[4:], uint64(r.size))
	binary.BigEndian.PutUint32(v[12:], r.crc)
	v[20] = byte(len(r.name))
	v = append(append(v, r.name...), r.prefix...)
	binary.BigEndian.PutUint32(v[16:], crc32.Checksum(v[20:], castagnoli))
	return v
}

// isRef reports whether v is (meant to be) a reference rather than a frame.
func isRef(v []byte) bool { return len(v) >= 3 && v[0] == frameMagic && v[1] == 'H' && v[2] == 'R' }

func decodeRef(v []byte) (blobRef, error) {
	switch {
	case len(v) < refHeaderLen:
		return blobRef{}, damaged("body reference cut short: %d bytes", len(v))
	case v[3] != frameVersion:
		return blobRef{}, damaged("unknown body reference version %d", v[3])
	}
	if want, got := binary.BigEndian.Uint32(v[16:]), crc32.Checksum(v[20:], castagnoli); want != got {
		return blobRef{}, damaged("body reference: CRC-32C mismatch: stored %08x, computed %08x", want, got)
	}
	n := int(v[20])
	if len(v) < refHeaderLen+n {
		return blobRef{}, damaged("body reference cut short: %d bytes", len(v))
	}
	r := blobRef{
		name:   string(v[refHeaderLen : refHeaderLen+n]),
		size:   int64(binary.BigEndian.Uint64(v[4:])),
		crc:    binary.BigEndian.Uint32(v[12:]),
		prefix: v[refHeaderLen+n:],
	}
	if !validBlobName(r.name) || r.size < 0 {
		return blobRef{}, damaged("body reference names %q of %d bytes", r.name, r.size)
	}
	return r, nil
}

// body is the mail.Body a reference stands for, owned by owner.
func (d *blobDir) body(r blobRef, owner string) mail.Body {
	fb := &FileBody{dir: d, name: r.name, size: r.size, crc: r.crc, owner: owner}
	return mail.Prepend(r.prefix, fb)
}

// removeOrphans removes every file of d that names is not holding (see
// above), and reports how many it removed. It runs when a store opens,
// before anything writes.
func (d *blobDir) removeOrphans(names map[string]bool) (int, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return 0, fmt.Errorf("storage: %w", err)
	}
	n := 0
	for _, e := range entries {
		if names[e.Name()] {
			continue
		}
		if err := os.RemoveAll(d.file(e.Name())); err != nil {
			return n, fmt.Errorf("storage: removing an orphan body file: %w", err)
		}
		n++
	}
	if n > 0 {
		if err := d.syncIfNeeded(); err != nil {
			return n, err
		}
		d.log.Info("storage: removed body files no record holds (a crash before their record was written, or after it was deleted)",
			"dir", d.path, "files", n)
	}
	return n, nil
}

// orphans lists the files of d that names is not holding.
func (d *blobDir) orphans(names map[string]bool) ([]string, error) {
	entries, err := os.ReadDir(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !names[e.Name()] {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// heldNames reads the file names of every index record under prefix.
func heldNames(db *DB, prefix []byte) (map[string]bool, error) {
	names := map[string]bool{}
	err := db.Scan(prefix, func(_, v []byte) error {
		names[string(v)] = true
		return nil
	})
	return names, err
}

// ownerString is the owner of a mailbox message's file (hold).
func ownerString(addr string, id uint64) string {
	var b strings.Builder
	b.WriteString(addr)
	b.WriteByte(0)
	b.WriteString(fmt.Sprint(id))
	return b.String()
}
