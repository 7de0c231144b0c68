package storage

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

// bigMessage is an RFC 5322 message of n bytes (n above the inline
// threshold makes a body file), its text from seed.
func bigMessage(seed string, n int) []byte {
	b := []byte("From: a@example.test\r\nSubject: " + seed + "\r\n\r\n")
	for i := 0; len(b) < n; i++ {
		b = append(b, seed...)
		b = append(b, byte('a'+i%26), '\r', '\n')
	}
	return b[:n]
}

// writeBody writes data into w in pieces of odd sizes and commits it.
func writeBody(t *testing.T, w mail.BodyWriter, data []byte) mail.Body {
	t.Helper()
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 7777)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	b, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bodyFiles lists the files of a store's bodies directory.
func bodyFiles(t *testing.T, dbDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dbDir, bodiesDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func nlink(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(fi.Sys().(*syscall.Stat_t).Nlink)
}

func syncModes(t *testing.T, run func(t *testing.T, opt Options)) {
	for _, mode := range []string{"syncfs", "fsync"} {
		t.Run(mode, func(t *testing.T) {
			opt := Options{ValueLogGCInterval: -1}
			if mode == "syncfs" {
				s, err := NewSyncer(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				opt.Syncer = s
			}
			run(t, opt)
		})
	}
}

// A small body stays in memory and in badger (no file is created); a large
// one is written to a file as it arrives, referenced by the queue, read
// back verified, and unlinked once its deletion is durable.
func TestQueueBodyFiles(t *testing.T) {
	syncModes(t, func(t *testing.T, opt Options) {
		dir := t.TempDir()
		q, err := OpenQueue(dir, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		ctx := context.Background()

		w, _ := q.NewBody()
		small := writeBody(t, w, bigMessage("small", DefaultInlineBodyBytes))
		if _, ok := small.(mail.BytesBody); !ok || len(bodyFiles(t, dir)) != 0 {
			t.Fatalf("a body of the inline threshold: %T, files %v; want bytes in memory and no file", small, bodyFiles(t, dir))
		}

		data := bigMessage("large", 3<<20+17)
		w, _ = q.NewBody()
		body := writeBody(t, w, data)
		fb, ok := body.(*FileBody)
		if !ok || fb.Size() != int64(len(data)) || fb.CRC() != crc32.Checksum(data, castagnoli) {
			t.Fatalf("a large body: %T %+v", body, body)
		}
		if got, err := os.ReadFile(fb.Path()); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("the body file holds %d bytes (%v), want the %d written", len(got), err, len(data))
		}
		env := testEnvelope("BIG1")
		// A rule's header fields in front of the file: kept in the
		// reference, not written into the file.
		if err := q.Put(ctx, &mail.Message{Envelope: env, Body: mail.Prepend([]byte("X-Rule: yes\r\n"), body)}); err != nil {
			t.Fatal(err)
		}
		v, err := q.db.Get(key(prefixBody, "BIG1"))
		if err != nil || !isRef(v) || len(v) > 100 {
			t.Fatalf("b/BIG1 = %d bytes (ref %v), %v; want a reference", len(v), isRef(v), err)
		}
		got, err := queueBody(q, "BIG1")
		if err != nil || !bytes.Equal(got, append([]byte("X-Rule: yes\r\n"), data...)) {
			t.Fatalf("Body(BIG1) = %d bytes, %v", len(got), err)
		}
		if files := bodyFiles(t, dir); len(files) != 1 || files[0] != fb.name {
			t.Fatalf("files %v, want the one written (%s), taken over", files, fb.name)
		}
		// Put again (ProcessHere: the same message, its body read back):
		// still one file.
		again, _ := q.Body("BIG1")
		if err := q.Put(ctx, &mail.Message{Envelope: env, Body: again}); err != nil {
			t.Fatal(err)
		}
		if files := bodyFiles(t, dir); len(files) != 1 {
			t.Fatalf("after a second Put: files %v", files)
		}
		// Another message with the same body (a forward copy) gets a
		// link of its own, so that deleting one keeps the other.
		env2 := testEnvelope("BIG2")
		if err := q.Put(ctx, &mail.Message{Envelope: env2, Body: mail.Prepend([]byte("Delivered-To: a@example.test\r\n"), again)}); err != nil {
			t.Fatal(err)
		}
		if files := bodyFiles(t, dir); len(files) != 2 || nlink(t, fb.Path()) != 2 {
			t.Fatalf("a second message of the same body: files %v, links %d", files, nlink(t, fb.Path()))
		}
		if err := <-q.Delete("BIG1"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(fb.Path()); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the file of a deleted message is still there: %v", err)
		}
		if got, err := queueBody(q, "BIG2"); err != nil || !bytes.HasSuffix(got, data) {
			t.Fatalf("the other message after the delete: %d bytes, %v", len(got), err)
		}
		if err := <-q.Delete("BIG2"); err != nil {
			t.Fatal(err)
		}
		if files := bodyFiles(t, dir); len(files) != 0 {
			t.Fatalf("files after deleting both: %v", files)
		}
	})
}

// The writer holds at most about its inline threshold, whatever the size
// of the body (the file grows, the buffer does not).
func TestBodyWriterHoldsItsBufferOnly(t *testing.T) {
	q, err := OpenQueue(t.TempDir(), Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	w, _ := q.NewBody()
	bw := w.(*bodyWriter)
	piece := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB
	for range 1000 {                                        // 31 MiB
		if _, err := w.Write(piece); err != nil {
			t.Fatal(err)
		}
		if cap(bw.buf) > 2*DefaultInlineBodyBytes {
			t.Fatalf("the writer's buffer grew to %d bytes", cap(bw.buf))
		}
	}
	b, err := w.Commit()
	if err != nil || b.Size() != 1000*int64(len(piece)) {
		t.Fatalf("Commit = %v, %v", b, err)
	}
	DiscardBody(b)
	if _, err := os.Stat(b.(*FileBody).Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a discarded body's file: %v", err)
	}
}

// An aborted writer and a committed body nobody stored leave no file
// behind: the first at once, the second at the next open (an orphan, as
// after a crash before the record was written).
func TestBodyFilesNoRecordHoldsAreRemoved(t *testing.T) {
	dir := t.TempDir()
	q, err := OpenQueue(dir, Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := q.NewBody()
	if _, err := w.Write(bigMessage("aborted", 200<<10)); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if files := bodyFiles(t, dir); len(files) != 0 {
		t.Fatalf("an aborted writer left %v", files)
	}
	w, _ = q.NewBody()
	writeBody(t, w, bigMessage("orphan", 200<<10))
	w, _ = q.NewBody()
	kept := writeBody(t, w, bigMessage("kept", 200<<10))
	if err := q.Put(context.Background(), &mail.Message{Envelope: testEnvelope("KEPT"), Body: kept}); err != nil {
		t.Fatal(err)
	}
	if files := bodyFiles(t, dir); len(files) != 2 {
		t.Fatalf("files %v, want the orphan and the kept one", files)
	}
	if r := CheckQueue(dir, false, Options{}); r.Err == nil {
		t.Fatal("CheckQueue of an open queue succeeded")
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if r := CheckQueue(dir, false, Options{}); !r.OK() || len(r.Orphans) != 1 {
		t.Fatalf("CheckQueue: %+v; want ok with one orphan", r)
	}
	q = reopenQueue(t, dir)
	if files := bodyFiles(t, dir); len(files) != 1 || files[0] != kept.(*FileBody).name {
		t.Fatalf("after reopening: files %v, want only %s", files, kept.(*FileBody).name)
	}
	if got, err := queueBody(q, "KEPT"); err != nil || !bytes.Equal(got, bigMessage("kept", 200<<10)) {
		t.Fatalf("the kept body: %d bytes, %v", len(got), err)
	}
}

// A body file truncated, overwritten in place or gone: the queue's Body
// refuses a file of the wrong size or a missing one at once; one
// overwritten with the same length is read to its end and then fails
// (ErrDamaged instead of io.EOF), never returning as a whole body.
func TestDamagedBodyFile(t *testing.T) {
	data := bigMessage("damaged", 300<<10)
	for _, how := range []string{"truncated", "overwritten", "removed", "longer"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			q, err := OpenQueue(dir, Options{ValueLogGCInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			w, _ := q.NewBody()
			fb := writeBody(t, w, data).(*FileBody)
			if err := q.Put(context.Background(), &mail.Message{Envelope: testEnvelope("D1"), Body: fb}); err != nil {
				t.Fatal(err)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			switch how {
			case "truncated":
				if err := os.Truncate(fb.Path(), int64(len(data)/2)); err != nil {
					t.Fatal(err)
				}
			case "overwritten":
				f, err := os.OpenFile(fb.Path(), os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt([]byte("XXXXXXXX"), int64(len(data)/3)); err != nil {
					t.Fatal(err)
				}
				f.Close()
			case "removed":
				if err := os.Remove(fb.Path()); err != nil {
					t.Fatal(err)
				}
			case "longer":
				f, err := os.OpenFile(fb.Path(), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString("more")
				f.Close()
			}
			if r := CheckQueue(dir, false, Options{}); r.OK() || len(r.Damaged) != 1 || r.Damaged[0].Key != "b/D1" {
				t.Fatalf("CheckQueue: %+v; want b/D1 damaged", r)
			}
			q = reopenQueue(t, dir)
			body, err := q.Body("D1")
			if how != "overwritten" {
				wantDamaged(t, "Body", nil, err, "D1")
				return
			}
			if err != nil {
				t.Fatalf("Body of a file of the right size: %v", err)
			}
			r, err := body.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			n, err := io.Copy(io.Discard, r)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "CRC-32C mismatch") {
				t.Fatalf("reading the overwritten body: %d bytes, %v; want ErrDamaged at the end", n, err)
			}
			if err := VerifyBody(body); !errors.Is(err, ErrDamaged) {
				t.Fatalf("VerifyBody = %v", err)
			}
			if got, err := mail.ReadBody(body); got != nil || !errors.Is(err, ErrDamaged) {
				t.Fatalf("ReadBody = %d bytes, %v", len(got), err)
			}
		})
	}
}

// queueAndPartition opens a queue in queueDir and partition 0 of an
// account store in accountsDir, closed when the test ends.
func queueAndPartition(t *testing.T, queueDir, accountsDir string, qopt, aopt Options) (*QueueStore, *Partition) {
	t.Helper()
	q, err := OpenQueue(queueDir, qopt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	s, err := NewAccountStore(accountsDir, 1, aopt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p, err := s.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	return q, p
}

// A mailbox append of a queued body links the queue's file (one inode for
// the queue and every mailbox on the filesystem); the account rules'
// header fields are kept beside it; each holder unlinks only its own name.
func TestAppendLinksTheQueuedBody(t *testing.T) {
	syncModes(t, func(t *testing.T, opt Options) {
		ctx := context.Background()
		data := t.TempDir()
		q, p := queueAndPartition(t, filepath.Join(data, "queue"), filepath.Join(data, "accounts"), opt, opt)
		msg := bigMessage("linked", 1<<20)
		w, _ := q.NewBody()
		if err := q.Put(ctx, &mail.Message{Envelope: testEnvelope("L1"), Body: writeBody(t, w, msg)}); err != nil {
			t.Fatal(err)
		}
		queued, err := q.Body("L1")
		if err != nil {
			t.Fatal(err)
		}
		_, qfile, _ := BodyFile(queued)
		if !p.Linkable(queued) {
			t.Fatal("a queued body on the same filesystem is not linkable")
		}
		var ids []string
		for i, addr := range []string{"ann@example.test", "bob@example.test", "cy@example.test"} {
			if err := p.CreateAccount(ctx, Account{Address: addr}); err != nil {
				t.Fatal(err)
			}
			body := queued
			if i == 1 {
				body = mail.Prepend([]byte("X-Folder-Rule: 1\r\n"), queued)
			}
			res, err := p.Append(ctx, addr, AppendRequest{DedupKey: "L1/" + addr, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, res.ID)
		}
		if n := nlink(t, qfile.Path()); n != 4 {
			t.Fatalf("the queued file has %d links, want 4 (the queue and three mailboxes)", n)
		}
		if got, err := p.Raw("bob@example.test", ids[1]); err != nil || !bytes.Equal(got, append([]byte("X-Folder-Rule: 1\r\n"), msg...)) {
			t.Fatalf("bob's copy: %d bytes, %v", len(got), err)
		}
		if ms, _ := p.Messages("bob@example.test", ""); len(ms) != 1 || ms[0].Size != int64(len(msg))+18 {
			t.Fatalf("bob's listing %+v", ms)
		}
		if used, _, _ := p.Usage("ann@example.test"); used != int64(len(msg)) {
			t.Fatalf("ann's usage %d", used)
		}
		// A repeated delivery links nothing.
		if res, err := p.Append(ctx, "ann@example.test", AppendRequest{DedupKey: "L1/ann@example.test", Body: queued}); err != nil || !res.Duplicate {
			t.Fatalf("repeat: %+v, %v", res, err)
		}
		if n := nlink(t, qfile.Path()); n != 4 {
			t.Fatalf("after a repeated delivery: %d links", n)
		}
		if err := <-q.Delete("L1"); err != nil {
			t.Fatal(err)
		}
		if err := p.DeleteMessage(ctx, "ann@example.test", ids[0]); err != nil {
			t.Fatal(err)
		}
		files := bodyFiles(t, p.db.Dir())
		if len(files) != 2 || nlink(t, filepath.Join(p.db.Dir(), bodiesDir, files[0])) != 2 {
			t.Fatalf("after the queue's and ann's deletes: files %v", files)
		}
		if got, err := p.Raw("cy@example.test", ids[2]); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("cy's copy after the others' deletes: %d bytes, %v", len(got), err)
		}
		// Deleting an account removes its files with its messages.
		if err := p.DeleteAccount(ctx, "cy@example.test"); err != nil {
			t.Fatal(err)
		}
		if files := bodyFiles(t, p.db.Dir()); len(files) != 1 {
			t.Fatalf("after deleting cy: files %v", files)
		}
		if r, err := p.Body("bob@example.test", ids[1]); err != nil || r.Size() != int64(len(msg))+18 {
			t.Fatalf("bob's body: %v, %v", r, err)
		}
	})
}

// An append of a queued body file whose bytes were overwritten (right
// length, wrong CRC-32C) is refused with ErrBodyDamaged, found as the
// append reads the body for its summary (the only read before the link):
// nothing is linked or stored, and the dedup key stays free for a retry.
func TestAppendRefusesADamagedQueuedBody(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	opt := Options{ValueLogGCInterval: -1}
	q, p := queueAndPartition(t, filepath.Join(data, "queue"), filepath.Join(data, "accounts"), opt, opt)
	const ann = "ann@example.test"
	if err := p.CreateAccount(ctx, Account{Address: ann}); err != nil {
		t.Fatal(err)
	}
	msg := bigMessage("damaged-append", 300<<10)
	w, _ := q.NewBody()
	if err := q.Put(ctx, &mail.Message{Envelope: testEnvelope("DA1"), Body: writeBody(t, w, msg)}); err != nil {
		t.Fatal(err)
	}
	queued, err := q.Body("DA1")
	if err != nil {
		t.Fatal(err)
	}
	_, qfile, _ := BodyFile(queued)
	f, err := os.OpenFile(qfile.Path(), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XXXXXXXX"), int64(len(msg)/2)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, durable, err := p.AppendAsync(ctx, ann, AppendRequest{DedupKey: "DA1/" + ann, Body: queued})
	if !errors.Is(err, ErrBodyDamaged) || !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "CRC-32C mismatch") || durable != nil {
		t.Fatalf("append of a damaged body: %v (durable %v), want ErrBodyDamaged naming the CRC-32C mismatch", err, durable)
	}
	if n := nlink(t, qfile.Path()); n != 1 {
		t.Errorf("the damaged file has %d links, want 1 (the queue's)", n)
	}
	if used, n, _ := p.Usage(ann); used != 0 || n != 0 {
		t.Errorf("ann holds %d messages, %d bytes; want none", n, used)
	}
	if _, ok, err := p.Delivered(ann, "DA1/"+ann); ok || err != nil {
		t.Errorf("Delivered after the refusal: %v, %v; want not delivered", ok, err)
	}
}

// Across filesystems a mailbox append copies the body (streaming,
// verified): the queue on tmpfs (/dev/shm), the partition on the test's
// disk.
func TestAppendCopiesAcrossFilesystems(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "homing-blob-")
	if err != nil {
		t.Fatalf("this test needs tmpfs at /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	disk := t.TempDir()
	if sameDevice(shm, disk) {
		t.Fatalf("%s and %s are on one filesystem; the test needs two", shm, disk)
	}
	ctx := context.Background()
	q, p := queueAndPartition(t, filepath.Join(shm, "queue"), filepath.Join(disk, "accounts"),
		Options{ValueLogGCInterval: -1, MemTableSize: MinMemTableSize}, Options{ValueLogGCInterval: -1})
	msg := bigMessage("copied", 700<<10)
	w, _ := q.NewBody()
	if err := q.Put(ctx, &mail.Message{Envelope: testEnvelope("C1"), Body: writeBody(t, w, msg)}); err != nil {
		t.Fatal(err)
	}
	queued, _ := q.Body("C1")
	if p.Linkable(queued) {
		t.Fatal("a body on another filesystem is linkable")
	}
	if err := p.CreateAccount(ctx, Account{Address: "ann@example.test"}); err != nil {
		t.Fatal(err)
	}
	res, err := p.Append(ctx, "ann@example.test", AppendRequest{DedupKey: "C1/ann", Body: queued})
	if err != nil {
		t.Fatal(err)
	}
	_, qfile, _ := BodyFile(queued)
	if nlink(t, qfile.Path()) != 1 {
		t.Fatal("the queued file was linked across filesystems")
	}
	if err := <-q.Delete("C1"); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Raw("ann@example.test", res.ID); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("the copy: %d bytes, %v", len(got), err)
	}
}

// A damaged file of a mailbox message is ErrDamaged for Raw (never bytes),
// and homing check finds it and, with repair, removes the message and its
// file.
func TestMailboxBodyFileDamaged(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := NewAccountStore(root, 1, Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CreateAccount(ctx, Account{Address: "ann@example.test"}); err != nil {
		t.Fatal(err)
	}
	msg := bigMessage("mailbox", 500<<10)
	w, _ := p.NewBody()
	res, err := p.Append(ctx, "ann@example.test", AppendRequest{Body: writeBody(t, w, msg), Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	files := bodyFiles(t, p.db.Dir())
	if len(files) != 1 {
		t.Fatalf("files %v: a fetched body is adopted, not linked", files)
	}
	path := filepath.Join(p.db.Dir(), bodiesDir, files[0])
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("!!"), 1000)
	f.Close()
	got, err := p.Raw("ann@example.test", res.ID)
	wantDamaged(t, "Raw", got, err, "CRC-32C mismatch")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	reports, err := CheckAccountStore(root, true, Options{})
	if err != nil || len(reports) != 1 || len(reports[0].Damaged) != 2 || !strings.HasPrefix(reports[0].Damaged[0].Key, "r/") {
		t.Fatalf("CheckAccountStore --repair = %+v, %v", *reports[0], err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the damaged message's file after repair: %v", err)
	}
	reports, err = CheckAccountStore(root, false, Options{})
	if err != nil || len(reports) != 1 || !reports[0].OK() || len(reports[0].Orphans) != 0 {
		t.Fatalf("after the repair: %+v, %v", reports[0], err)
	}
}
