package testkit

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// Received is one message a FakeMX accepted.
type Received struct {
	From  string
	To    []string
	Data  []byte
	Notes map[string]string // DSN parameters seen: "RET", "ENVID", "NOTIFY:<rcpt>"
}

// FakeMX is a remote MTA on loopback that records what it receives. Its
// behaviour is set through its fields, which may be changed while it runs
// (under its lock, through the setters).
type FakeMX struct {
	Addr string // host:port it listens on

	mu       sync.Mutex
	got      []Received
	rcptErr  func(rcpt string) *gosmtp.SMTPError
	dataErr  *gosmtp.SMTPError
	server   *gosmtp.Server
	sessions int
}

// StartFakeMX starts a fake MX on 127.0.0.1:0, stopped when the test ends.
func StartFakeMX(t testing.TB) *FakeMX {
	t.Helper()
	m := &FakeMX{}
	s := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		m.mu.Lock()
		m.sessions++
		m.mu.Unlock()
		return &mxSession{mx: m}, nil
	}))
	s.Domain = "mx.fake.test"
	s.EnableDSN = true
	s.EnableSMTPUTF8 = true
	s.ReadTimeout = 30 * time.Second
	s.WriteTimeout = 30 * time.Second
	s.ErrorLog = nopLogger{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.Addr = ln.Addr().String()
	m.server = s
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return m
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}
func (nopLogger) Println(...interface{})        {}

// FailRcpt makes RCPT TO answer err for recipients for which match returns
// true (nil match: every recipient accepted again).
func (m *FakeMX) FailRcpt(match func(rcpt string) bool, err *gosmtp.SMTPError) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if match == nil {
		m.rcptErr = nil
		return
	}
	m.rcptErr = func(r string) *gosmtp.SMTPError {
		if match(r) {
			return err
		}
		return nil
	}
}

// FailData makes the reply to the end of DATA err (nil: 250 again).
func (m *FakeMX) FailData(err *gosmtp.SMTPError) {
	m.mu.Lock()
	m.dataErr = err
	m.mu.Unlock()
}

// Messages returns a copy of what was received so far.
func (m *FakeMX) Messages() []Received {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Received(nil), m.got...)
}

// Sessions is the number of SMTP connections accepted so far.
func (m *FakeMX) Sessions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions
}

// WaitMessages waits until at least n messages were received.
func (m *FakeMX) WaitMessages(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	Eventually(t, timeout, func() bool { return len(m.Messages()) >= n }, "fake MX got %d messages, want %d", len(m.Messages()), n)
	return m.Messages()
}

type mxSession struct {
	mx   *FakeMX
	cur  Received
	rcpt []string
}

func (s *mxSession) Reset()        { s.cur = Received{}; s.rcpt = nil }
func (s *mxSession) Logout() error { return nil }
func (s *mxSession) Mail(from string, opts *gosmtp.MailOptions) error {
	s.cur = Received{From: from, Notes: map[string]string{}}
	if opts != nil {
		if opts.Return != "" {
			s.cur.Notes["RET"] = string(opts.Return)
		}
		if opts.EnvelopeID != "" {
			s.cur.Notes["ENVID"] = opts.EnvelopeID
		}
	}
	return nil
}

func (s *mxSession) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	s.mx.mu.Lock()
	f := s.mx.rcptErr
	s.mx.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	if opts != nil && len(opts.Notify) > 0 {
		var n []string
		for _, x := range opts.Notify {
			n = append(n, string(x))
		}
		s.cur.Notes["NOTIFY:"+to] = strings.Join(n, ",")
	}
	s.rcpt = append(s.rcpt, to)
	return nil
}

func (s *mxSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mx.mu.Lock()
	defer s.mx.mu.Unlock()
	if s.mx.dataErr != nil {
		return s.mx.dataErr
	}
	if len(s.rcpt) == 0 {
		return errors.New("no recipients")
	}
	s.cur.To = append([]string(nil), s.rcpt...)
	s.cur.Data = b
	s.mx.got = append(s.mx.got, s.cur)
	return nil
}
