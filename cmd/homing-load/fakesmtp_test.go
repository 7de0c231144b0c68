package main

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"
)

// fakeMTA is a go-smtp server on loopback that stands in for a node: it
// counts what it accepts per recipient and can refuse on cue.
type fakeMTA struct {
	srv  *smtp.Server
	addr string

	// refuseData, when set, decides the reply to the k-th DATA (counted
	// from 1 in arrival order); refuseRcpt the reply to each RCPT. Set
	// them before the first connection.
	refuseData func(k int64) *smtp.SMTPError
	refuseRcpt func(to string) *smtp.SMTPError

	data     atomic.Int64 // DATA commands seen
	accepted atomic.Int64
	conns    atomic.Int64 // sessions (connections) opened
	done     chan struct{}

	mu     sync.Mutex
	sizes  map[int]int    // message size -> count
	byRcpt map[string]int // accepted per recipient
	sample []byte
}

// newFakeMTA serves a fakeMTA on 127.0.0.1:0 until the test ends.
func newFakeMTA(t *testing.T) *fakeMTA {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := startFakeMTA(l)
	t.Cleanup(m.close)
	return m
}

// startFakeMTA serves a fakeMTA on l until close.
func startFakeMTA(l net.Listener) *fakeMTA {
	m := &fakeMTA{sizes: map[int]int{}, byRcpt: map[string]int{}, done: make(chan struct{})}
	m.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		m.conns.Add(1)
		return &fakeSession{m: m}, nil
	}))
	m.srv.Domain = "fake.test"
	m.addr = l.Addr().String()
	go func() {
		defer close(m.done)
		m.srv.Serve(l)
	}()
	return m
}

// close stops the server and waits for it.
func (m *fakeMTA) close() {
	m.srv.Close()
	<-m.done
}

type fakeSession struct {
	m     *fakeMTA
	rcpts []string
}

func (s *fakeSession) Reset()        { s.rcpts = nil }
func (s *fakeSession) Logout() error { return nil }
func (s *fakeSession) Mail(from string, opts *smtp.MailOptions) error {
	return nil
}
func (s *fakeSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.m.refuseRcpt != nil {
		if e := s.m.refuseRcpt(to); e != nil {
			return e
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *fakeSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	k := s.m.data.Add(1)
	if s.m.refuseData != nil {
		if e := s.m.refuseData(k); e != nil {
			return e
		}
	}
	s.m.mu.Lock()
	s.m.sizes[len(b)]++
	for _, r := range s.rcpts {
		s.m.byRcpt[r]++
	}
	if s.m.sample == nil {
		s.m.sample = bytes.Clone(b)
	}
	s.m.mu.Unlock()
	s.m.accepted.Add(int64(len(s.rcpts)))
	return nil
}
