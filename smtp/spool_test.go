package smtp

import (
	"bufio"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/tlog"
)

// spoolEnqueuer queues into a real queue store (badger and body files on
// disk), as the node's Enqueuer does: the session writes DATA into the
// store's body writer.
type spoolEnqueuer struct {
	q    *storage.QueueStore
	dir  string
	mu   sync.Mutex
	msgs []*mail.Message
}

func (e *spoolEnqueuer) NewBody() (mail.BodyWriter, error) { return e.q.NewBody() }

// Admit implements Admitter, as the node's Enqueuer does: the queue
// store's free-space guard.
func (e *spoolEnqueuer) Admit(size int64) error { return e.q.Admit(size) }

func (e *spoolEnqueuer) Enqueue(ctx context.Context, msg *mail.Message) error {
	if err := e.q.Put(ctx, msg); err != nil {
		storage.DiscardBody(msg.Body)
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.msgs = append(e.msgs, msg)
	return nil
}

func (e *spoolEnqueuer) EnqueueTransfer(ctx context.Context, msg *mail.Message) (bool, error) {
	dup, err := e.q.PutTransfer(ctx, msg)
	if err != nil || dup {
		storage.DiscardBody(msg.Body)
	}
	if err == nil && !dup {
		e.mu.Lock()
		e.msgs = append(e.msgs, msg)
		e.mu.Unlock()
	}
	return dup, err
}

func (e *spoolEnqueuer) queued() []*mail.Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*mail.Message(nil), e.msgs...)
}

// files lists the queue's body files.
func (e *spoolEnqueuer) files(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.dir, "bodies"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range entries {
		out = append(out, x.Name())
	}
	return out
}

// startSpoolServer is a server on 127.0.0.1:0 whose Enqueuer is a
// spoolEnqueuer over a queue store in a temporary directory.
func startSpoolServer(t *testing.T, cfg Config) (string, *spoolEnqueuer) {
	t.Helper()
	return startSpoolServerWith(t, cfg, storage.Options{})
}

// startSpoolServerWith is startSpoolServer with the queue store's options
// (a free-space guard, say).
func startSpoolServerWith(t *testing.T, cfg Config, opt storage.Options) (string, *spoolEnqueuer) {
	t.Helper()
	if cfg.Hostname == "" {
		cfg.Hostname = "mx.example.test"
	}
	testLimits(&cfg)
	dir := t.TempDir()
	opt.ValueLogGCInterval = -1
	q, err := storage.OpenQueue(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	enq := &spoolEnqueuer{q: q, dir: dir}
	srv := NewServer(cfg, newFakeDirectory(), enq, nil, tlog.New(t, "smtp"), nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		<-served
		if err := q.Close(); err != nil {
			t.Errorf("closing the queue: %v", err)
		}
	})
	return l.Addr().String(), enq
}

// lineSource generates a message of about size bytes line by line, never
// holding more than one line, and the CRC-32C of what it generated.
type lineSource struct {
	left int
	line []byte
	n    int
	crc  uint32
	bad  int // emit a bare LF once this many bytes are out (0: never)
	buf  []byte
}

func (s *lineSource) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if len(s.line) == 0 {
		if s.n == 0 {
			s.line = []byte("From: big@example.net\r\nSubject: streamed\r\n\r\n")
		} else {
			// One buffer for every line: the source allocates nothing.
			s.buf = append(strconv.AppendInt(append(s.buf[:0], "line "...), int64(s.n), 10),
				" of a large message, 0123456789abcdefghijklmnopqrstuvwxyz\r\n"...)
			s.line = s.buf
		}
		if s.bad > 0 && s.n > 0 && s.n*len(s.line) >= s.bad {
			s.line[len(s.line)-2] = 'x' // ...x\n: a bare LF
			s.bad = 0
		}
		if len(s.line) > s.left {
			// The last line: cut to fit, still ending in CRLF.
			s.line = append(s.line[:max(s.left-2, 0)], "\r\n"[max(2-s.left, 0):]...)
		}
		s.n++
	}
	n := copy(p, s.line)
	s.line, s.left = s.line[n:], s.left-n
	s.crc = crc32.Update(s.crc, castagnoliTable, p[:n])
	return n, nil
}

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// sendStreamed runs one transaction over a raw connection, writing the
// message from src as it is generated, and returns the final reply.
func sendStreamed(t *testing.T, addr string, src io.Reader) (int, string) {
	t.Helper()
	c := dialRaw(t, addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<big@example.net>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	// After the commands: each sets its own short deadline (ioTimeout),
	// too short for 30 MiB under a loaded -race run.
	c.conn.SetDeadline(time.Now().Add(2 * time.Minute))
	w := bufio.NewWriterSize(c.conn, 32<<10)
	if _, err := io.Copy(w, src); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	c.send(".\r\n")
	// The server may still be working through what the socket buffered:
	// the same long deadline for the reply.
	c.conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	code, msg, err := c.r.ReadResponse(0)
	var pe *textproto.Error
	if err != nil && !errors.As(err, &pe) {
		t.Fatalf("reading the reply to the end of DATA: %v", err)
	}
	c.expect("QUIT", 221)
	return code, msg
}

// Issue #9, "40 parallel 30 MiB messages": DATA is streamed to the queue's
// body file as it arrives. A 30 MiB message costs the session, the client
// and the store a few buffers, not its size: everything the process
// allocates during the whole transaction stays under 1 MiB (it was more
// than 3 x 30 MiB when DATA was buffered whole and copied into badger).
func TestDataStreamsToTheQueueInBoundedMemory(t *testing.T) {
	addr, enq := startSpoolServer(t, Config{})
	const size = 30 << 20
	src := &lineSource{left: size}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	code, msg := sendStreamed(t, addr, src)
	runtime.ReadMemStats(&after)
	if code != 250 {
		t.Fatalf("end of DATA: %d %s", code, msg)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d MiB DATA: %d KiB allocated in all (client, session, store)", size>>20, alloc>>10)
	if alloc > 1<<20 {
		t.Errorf("%d KiB allocated during a %d MiB DATA; want under 1 MiB (the message must not be buffered)", alloc>>10, size>>20)
	}
	msgs := enq.queued()
	if len(msgs) != 1 {
		t.Fatalf("%d messages queued", len(msgs))
	}
	_, fb, ok := storage.BodyFile(msgs[0].Body)
	if !ok {
		t.Fatalf("the body is a %T, want a file", msgs[0].Body)
	}
	// The file holds the Received header and then exactly what was sent.
	f, err := os.Open(fb.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := fb.Size() - size
	head := make([]byte, hdr)
	if _, err := io.ReadFull(f, head); err != nil || !strings.HasPrefix(string(head), "Received: from client.example") {
		t.Fatalf("the file starts with %q (%v)", head, err)
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	if n, err := io.Copy(h, f); err != nil || n != size || h.Sum32() != src.crc {
		t.Fatalf("the file holds %d bytes after the header (crc %08x), sent %d (crc %08x): %v", n, h.Sum32(), size, src.crc, err)
	}
	if err := storage.VerifyBody(msgs[0].Body); err != nil {
		t.Fatal(err)
	}
}

// A spooled message refused for a bare LF deep inside it (SMTP
// smuggling), or for its size, is not queued and leaves no body file: the
// file written so far is removed as soon as the message is known to be
// refused. The session goes on.
func TestRefusedSpooledMessageLeavesNoFile(t *testing.T) {
	addr, enq := startSpoolServer(t, Config{MaxMessageBytes: 4 << 20})
	if code, msg := sendStreamed(t, addr, &lineSource{left: 2 << 20, bad: 1 << 20}); code != 550 || !strings.Contains(msg, "bare CR or LF") {
		t.Fatalf("a bare LF at 1 MiB: %d %s; want 550", code, msg)
	}
	if files := enq.files(t); len(files) != 0 {
		t.Fatalf("body files after a refused message: %v", files)
	}
	if code, msg := sendStreamed(t, addr, &lineSource{left: 5 << 20}); code != 552 {
		t.Fatalf("5 MiB over a 4 MiB limit: %d %s; want 552", code, msg)
	}
	if files := enq.files(t); len(files) != 0 || len(enq.queued()) != 0 {
		t.Fatalf("after a message too big: files %v, %d queued", files, len(enq.queued()))
	}
	// The next message is taken, into a file of its own.
	if code, msg := sendStreamed(t, addr, &lineSource{left: 1 << 20}); code != 250 {
		t.Fatalf("a good message after the refusals: %d %s", code, msg)
	}
	if files := enq.files(t); len(files) != 1 || len(enq.queued()) != 1 {
		t.Fatalf("after a good message: files %v, %d queued", files, len(enq.queued()))
	}
}

// A cluster transfer of a large message is spooled like any other: the
// envelope record is read from the first line, the rest goes to the file;
// a repeated transfer (a duplicate) removes its new file.
func TestClusterTransferIsSpooled(t *testing.T) {
	var accept atomic.Bool
	accept.Store(true)
	addr, enq := startSpoolServer(t, Config{
		Cluster:         NewClusterAuth("the-cluster-secret-123", "homing", "fe1"),
		AcceptTransfers: accept.Load,
	})
	c := NewClient(ClientConfig{Hostname: "be1.test"})
	auth := NewClusterAuth("the-cluster-secret-123", "homing", "be1")
	src := &lineSource{left: 3 << 20}
	body, err := io.ReadAll(src)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.Transfer(context.Background(), addr, auth, &mail.Message{Envelope: transferEnvelope("BIGT1"), Body: mail.BytesBody(body)}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := enq.queued()
	if len(msgs) != 1 || msgs[0].Envelope.ID != "BIGT1" {
		t.Fatalf("queued %d messages", len(msgs))
	}
	got, err := mail.ReadBody(msgs[0].Body)
	if err != nil || !strings.HasPrefix(string(got), "Received: ") || !strings.HasSuffix(string(got), string(body)) ||
		strings.Contains(string(got), envelopeRecord) {
		t.Fatalf("the transferred body: %d bytes, %v", len(got), err)
	}
	if files := enq.files(t); len(files) != 1 || !storage.IsFileBody(msgs[0].Body) {
		t.Fatalf("files %v after a transfer and its repetition; want one", files)
	}
}
