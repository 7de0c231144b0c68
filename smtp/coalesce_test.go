package smtp

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingListener hands out connections that record every Write the
// server makes on the socket.
type recordingListener struct {
	net.Listener
	mu     sync.Mutex
	writes []string
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, l: l}, nil
}

// take returns the writes recorded since the last call.
func (l *recordingListener) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.writes
	l.writes = nil
	return w
}

type recordingConn struct {
	net.Conn
	l *recordingListener
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, string(b))
	c.l.mu.Unlock()
	return c.Conn.Write(b)
}

func startRecordingServer(t *testing.T, cfg Config) (*recordingListener, *fakeEnqueuer) {
	t.Helper()
	cfg.Hostname = "mx.example.test"
	testLimits(&cfg)
	enq := &fakeEnqueuer{}
	srv := NewServer(cfg, newFakeDirectory(), enq, nil, nil, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := &recordingListener{Listener: l}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(rl) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return rl, enq
}

// TestRepliesCoalesced: the replies to a pipelined group of commands (RFC
// 2920), a multi-line EHLO reply among them, go out in one write, once the
// server has no more input; so do the reply to the end of a message and
// to the commands sent after it. A command on its own is answered at once.
func TestRepliesCoalesced(t *testing.T) {
	rl, enq := startRecordingServer(t, Config{})
	c := dialRaw(t, rl.Addr().String())
	if w := rl.take(); len(w) != 1 || !strings.HasPrefix(w[0], "220 ") {
		t.Fatalf("greeting writes = %q", w)
	}

	c.send("EHLO client.example\r\nMAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
	for _, want := range []int{250, 250, 250, 354} {
		if code, msg := c.read(); code != want {
			t.Fatalf("got %d %q, want %d", code, msg, want)
		}
	}
	w := rl.take()
	if len(w) != 1 {
		t.Fatalf("the replies to one pipelined group took %d writes, want 1: %q", len(w), w)
	}
	if !strings.Contains(w[0], "250-PIPELINING\r\n") || !strings.HasSuffix(w[0], "\r\n354 Go ahead. End your data with <CR><LF>.<CR><LF>\r\n") {
		t.Errorf("coalesced replies = %q", w[0])
	}

	c.send("Subject: x\r\n\r\nhi\r\n.\r\nNOOP\r\n")
	for _, want := range []int{250, 250} {
		if code, msg := c.read(); code != want {
			t.Fatalf("got %d %q, want %d", code, msg, want)
		}
	}
	if w := rl.take(); len(w) != 1 || !strings.HasPrefix(w[0], "250 2.0.0 OK queued as ") || strings.Count(w[0], "\r\n250 ") != 1 {
		t.Errorf("writes after the data = %q, want the two replies in one", w)
	}
	if envs, _ := enq.messages(); len(envs) != 1 {
		t.Fatalf("%d messages queued", len(envs))
	}

	c.expect("NOOP", 250)
	c.expect("QUIT", 221)
	c.expectClosed()
}

// TestRepliesCoalescedTLS: after STARTTLS the connection still works and
// the TLS records of a pipelined group's replies go out in one write.
func TestRepliesCoalescedTLS(t *testing.T) {
	rl, _ := startRecordingServer(t, Config{TLSConfig: selfSignedTLS(t, "mx.example.test")})
	c := dialRaw(t, rl.Addr().String())
	c.expect("EHLO client.example", 250)
	c.expect("STARTTLS", 220)
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn = tc
	c.r = textproto.NewReader(bufio.NewReader(tc))
	c.expect("EHLO client.example", 250)
	rl.take()

	c.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nRSET\r\n")
	for _, want := range []int{250, 250, 250, 250} {
		if code, msg := c.read(); code != want {
			t.Fatalf("got %d %q, want %d", code, msg, want)
		}
	}
	if w := rl.take(); len(w) != 1 {
		t.Errorf("the replies to one pipelined group over TLS took %d writes, want 1", len(w))
	}
	c.expect("QUIT", 221)
	c.expectClosed()
}
