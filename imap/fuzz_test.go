package imap

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
)

// fakeBackend answers every operation from a small fixed mailbox.
type fakeBackend struct{}

func (fakeBackend) Authenticate(_ context.Context, user, password string) (string, error) {
	if user == "u@example.test" && password == "p" {
		return user, nil
	}
	return "", mail.ErrAuthFailed
}

func (fakeBackend) Mailbox(_ context.Context, op *pb.MailboxOp) (*pb.MailboxReply, error) {
	f := &pb.FolderInfo{Id: 1, Name: "INBOX", UidValidity: 7, UidNext: 3, Modseq: 5, Messages: 2}
	entries := []*pb.MessageEntry{
		{Uid: 1, Id: 1, Modseq: 2, Flags: []string{`\Seen`}, Size: int64(len(fakeRaw)), Summary: []byte("{}")},
		{Uid: 2, Id: 2, Modseq: 3, Size: int64(len(fakeRaw)), Summary: []byte(`{"e":{"Subject":"x"}}`)},
	}
	switch op.Kind {
	case pb.MailboxOp_FOLDERS:
		return &pb.MailboxReply{Folders: []*pb.FolderInfo{f}}, nil
	case pb.MailboxOp_SELECT, pb.MailboxOp_SYNC:
		return &pb.MailboxReply{Folder: f, Entries: entries, Modseq: 5, Full: true}, nil
	case pb.MailboxOp_FETCH, pb.MailboxOp_STORE:
		return &pb.MailboxReply{Entries: entries}, nil
	case pb.MailboxOp_COPY, pb.MailboxOp_MOVE:
		return &pb.MailboxReply{SourceUids: []uint32{1}, DestUids: []uint32{9}, UidValidity: 8}, nil
	case pb.MailboxOp_EXPUNGE:
		return &pb.MailboxReply{Expunged: []uint32{2}}, nil
	}
	return &pb.MailboxReply{Folder: f, Uid: 3, UidValidity: 7}, nil
}

const fakeRaw = "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b--\r\n"

func (fakeBackend) ReadMessage(_ context.Context, _, _ string, off int64, length int, _ bool) ([]byte, int64, error) {
	raw := fakeRaw
	off = min(off, int64(len(raw)))
	return []byte(raw[off:min(off+int64(length), int64(len(raw)))]), int64(len(raw)), nil
}

func (fakeBackend) MailboxOwner(string) string { return "owner" }

func (fakeBackend) NewBody() (mail.BodyWriter, error) { return new(mail.MemoryBodyWriter), nil }

func (f fakeBackend) AppendMessage(ctx context.Context, op *pb.MailboxOp, body mail.Body) (*pb.MailboxReply, error) {
	raw, err := mail.ReadBody(body)
	if err != nil {
		return nil, err
	}
	op.Body = raw
	return f.Mailbox(ctx, op)
}

func (fakeBackend) NewWatcher(func(*pb.MailboxChanged)) (Watcher, error) { return nopWatcher{}, nil }

type nopWatcher struct{}

func (nopWatcher) Addr() (string, string) { return "", "" }
func (nopWatcher) Stop()                  {}

// loopbackConn is one end of a pipe that says it comes from loopback.
type loopbackConn struct{ net.Conn }

func (loopbackConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// pipeListener hands out one connection.
type pipeListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{} }

// panicLog fails the fuzz run on a panic that imapserver recovered.
type panicLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *panicLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *panicLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// FuzzSession drives a whole IMAP session over net.Pipe with a fake
// backend: whatever the client sends, the server answers or closes, and
// never panics.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"a CAPABILITY\r\na ID NIL\r\na LOGIN u@example.test p\r\na SELECT INBOX\r\na FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE BODY.PEEK[] BODY[1] BINARY[1])\r\n",
		"a LOGIN u@example.test p\r\nb SELECT INBOX\r\nc UID STORE 1:* +FLAGS (\\Deleted)\r\nd EXPUNGE\r\ne UID MOVE 1 Trash\r\nf GETQUOTAROOT INBOX\r\n",
		"a LOGIN u@example.test p\r\nb SELECT INBOX\r\nc SEARCH OR SEEN HEADER Subject x NOT BODY y\r\nd IDLE\r\nDONE\r\ne LOGOUT\r\n",
		"a APPEND INBOX {5}\r\nhello\r\na STARTTLS\r\n",
		"a LOGIN {14+}\r\nu@example.test {1}\r\np\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		logs := &panicLog{}
		srv := New(Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), Resync: time.Hour, OwnerCheck: time.Hour}, fakeBackend{}, nil)
		ln := &pipeListener{ch: make(chan net.Conn, 1), done: make(chan struct{})}
		client, server := net.Pipe()
		ln.ch <- loopbackConn{server}
		served := make(chan struct{})
		go func() { defer close(served); _ = srv.Serve(ln, false) }()
		read := make(chan struct{})
		go func() { defer close(read); _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write(script)
		_, _ = client.Write([]byte("\r\nDONE\r\nz LOGOUT\r\n"))
		select {
		case <-read:
		case <-time.After(3 * time.Second):
		}
		client.Close()
		_ = srv.Close()
		<-served
		if strings.Contains(logs.String(), "panic") {
			t.Fatalf("the session panicked on %q:\n%s", script, logs.String())
		}
	})
}
