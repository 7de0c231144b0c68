package smtp

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/tlog"
)

// diskFS is a filesystem whose free space the test sets (the queue
// store's free-space guard asks it instead of statfs).
type diskFS struct{ avail atomic.Int64 }

func (d *diskFS) statfs() (int64, int64, error) { return d.avail.Load(), 1 << 40, nil }

func startGuardedSpool(t *testing.T, minFree int64) (string, *spoolEnqueuer, *diskFS) {
	t.Helper()
	fs := &diskFS{}
	fs.avail.Store(1 << 40)
	space, err := storage.NewSpace(t.TempDir(), storage.SpaceConfig{Store: "queue", MinFree: minFree, Statfs: fs.statfs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { space.Close() })
	addr, enq := startSpoolServerWith(t, Config{}, storage.Options{Space: space})
	return addr, enq, fs
}

// Below the queue's free-space limit MAIL FROM answers 452 4.3.1 (Postfix
// below queue_minfree), and so does a SIZE that does not fit now (RFC
// 1870 §6.1); above it again, mail is taken without anything restarted.
func TestMailFromBelowMinFreeIs452(t *testing.T) {
	addr, enq, fs := startGuardedSpool(t, 64<<20)
	c := dialRaw(t, addr)
	c.expect("EHLO client.example", 250)
	fs.avail.Store(10 << 20)
	time.Sleep(60 * time.Millisecond) // the guard's cache
	if code, msg := c.cmd("MAIL FROM:<a@example.net>"); code != 452 || !strings.HasPrefix(msg, "4.3.1 ") {
		t.Fatalf("MAIL FROM below the limit: %d %s, want 452 4.3.1", code, msg)
	}
	fs.avail.Store(90 << 20) // above the limit, but not by 30 MiB
	waitAdmitted(t, enq)
	if code, msg := c.cmd("MAIL FROM:<a@example.net> SIZE=" + itoa(30<<20)); code != 452 || !strings.HasPrefix(msg, "4.3.1 ") {
		t.Fatalf("a SIZE that does not fit now: %d %s, want 452 4.3.1", code, msg)
	}
	c.expect("MAIL FROM:<a@example.net> SIZE=1000", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	if code, msg := c.read(); code != 250 {
		t.Fatalf("end of DATA with space back: %d %s", code, msg)
	}
	c.expect("QUIT", 221)
}

// waitAdmitted waits out the guard's cache of the free space.
func waitAdmitted(t *testing.T, enq *spoolEnqueuer) {
	t.Helper()
	for i := 0; enq.Admit(0) != nil; i++ {
		if i > 1000 {
			t.Fatal("the guard does not see the space back")
		}
		time.Sleep(time.Millisecond)
	}
}

// switchAt runs f once after n bytes have been read through it.
type switchAt struct {
	r    io.Reader
	n    int
	f    func()
	done bool
}

func (s *switchAt) Read(p []byte) (int, error) {
	k, err := s.r.Read(p)
	s.n -= k
	if s.n <= 0 && !s.done {
		s.done = true
		s.f()
	}
	return k, err
}

// The disk fills up in the middle of a streamed DATA: the body file
// stops being written and is removed at once, the client's data is read
// to its end, and the reply is 452 4.3.1; nothing is queued. Between
// MAIL FROM and DATA the same: 452 4.3.1 at the end of DATA, nothing
// written.
func TestDataMeetsAFullDiskIs452AndLeavesNoFile(t *testing.T) {
	addr, enq, fs := startGuardedSpool(t, 64<<20)
	src := &switchAt{r: &lineSource{left: 8 << 20}, n: 2 << 20, f: func() { fs.avail.Store(1 << 20) }}
	code, msg := sendStreamed(t, addr, src)
	if code != 452 || !strings.HasPrefix(msg, "4.3.1 ") {
		t.Fatalf("end of DATA on a disk that filled up: %d %s, want 452 4.3.1", code, msg)
	}
	if files := enq.files(t); len(files) != 0 {
		t.Errorf("body files left behind: %v", files)
	}
	if n := len(enq.queued()); n != 0 {
		t.Errorf("%d messages queued", n)
	}

	fs.avail.Store(1 << 40)
	waitAdmitted(t, enq)
	c := dialRaw(t, addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<a@example.net>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	fs.avail.Store(1 << 20)           // full before DATA
	time.Sleep(60 * time.Millisecond) // the guard's cache
	c.expect("DATA", 354)
	c.send("Subject: x\r\n\r\n" + strings.Repeat("line of text\r\n", 10000) + ".\r\n")
	if code, msg := c.read(); code != 452 || !strings.HasPrefix(msg, "4.3.1 ") {
		t.Fatalf("DATA after the disk filled: %d %s, want 452 4.3.1", code, msg)
	}
	if files := enq.files(t); len(files) != 0 || len(enq.queued()) != 0 {
		t.Errorf("written: files %v, queued %d", enq.files(t), len(enq.queued()))
	}
	c.expect("QUIT", 221)
}

// failingBodies is a BodyStore whose writers fail at Commit (a failed
// fsync, a full disk found there): the session must not answer 250.
type failingBodies struct {
	fakeEnqueuer
	err error
}

type failingWriter struct {
	mail.MemoryBodyWriter
	err error
}

func (w *failingWriter) Commit() (mail.Body, error) { w.Abort(); return nil, w.err }

func (f *failingBodies) NewBody() (mail.BodyWriter, error) { return &failingWriter{err: f.err}, nil }

// A body whose sync (Commit) fails is never answered 250: a failed sync
// is 451 4.3.0, a full disk 452 4.3.1; nothing is enqueued.
func TestDataSyncFailureIsNot250(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		enh  string
	}{
		{errors.New("storage: writing a body file: sync: input/output error"), 451, "4.3.0"},
		{&noSpaceErr{}, 452, "4.3.1"},
	} {
		enq := &failingBodies{err: tc.err}
		addr := startServerWithEnqueuer(t, enq)
		c := dialRaw(t, addr)
		c.expect("EHLO client.example", 250)
		c.expect("MAIL FROM:<a@example.net>", 250)
		c.expect("RCPT TO:<alice@example.test>", 250)
		c.expect("DATA", 354)
		c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
		if code, msg := c.read(); code != tc.code || !strings.HasPrefix(msg, tc.enh+" ") {
			t.Errorf("Commit failing with %v: %d %s, want %d %s", tc.err, code, msg, tc.code, tc.enh)
		}
		c.expect("QUIT", 221)
		if n := len(enq.envs); n != 0 {
			t.Errorf("%d messages enqueued", n)
		}
	}
}

// noSpaceErr is a write error of a full disk (ENOSPC) that also says it
// is mail.ErrNoSpace, as the store's errors do.
type noSpaceErr struct{}

func (*noSpaceErr) Error() string { return "write: no space left on device" }
func (*noSpaceErr) Unwrap() []error {
	return []error{syscall.ENOSPC, mail.ErrNoSpace}
}

// startServerWithEnqueuer serves enq on 127.0.0.1:0 until the test ends.
func startServerWithEnqueuer(t *testing.T, enq Enqueuer) string {
	t.Helper()
	cfg := Config{Hostname: "mx.example.test"}
	testLimits(&cfg)
	srv := NewServer(cfg, newFakeDirectory(), enq, nil, tlog.New(t, "smtp"), nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	return l.Addr().String()
}
