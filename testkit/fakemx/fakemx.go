// Package fakemx is a fake remote MX for tests: a go-smtp server on
// loopback that records every transaction it sees (envelope, ESMTP and
// DSN parameters, body, TLS, EHLO name) and fails on demand, per command:
// refuse MAIL, refuse RCPT for matching recipients, refuse the message at
// the end of DATA, hang up, or answer late. It can require AUTH PLAIN of
// one user (RequireAuth), as a smarthost does.
//
//	mx := fakemx.Start(t)
//	mx.FailRcpt(func(r string) bool { return r == "gone@dest.test" }, &gosmtp.SMTPError{Code: 550, ...})
//	... deliver to mx.Addr ...
//	got := mx.WaitMessages(t, 1, 10*time.Second)
//
// Faults may be set and cleared while the server runs; every method is
// safe for concurrent use. Serve runs one outside a test (in a helper
// process, say).
//
// It imports nothing from Homing, so the tests of every package can use it.
package fakemx

import (
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Transaction is one mail transaction the server saw, from an accepted
// MAIL FROM on.
type Transaction struct {
	Helo        string               // the client's EHLO or HELO name
	TLS         bool                 // the connection was under TLS at MAIL
	From        string               // the reverse path ("" for the null sender)
	MailOptions gosmtp.MailOptions   // SIZE, BODY, SMTPUTF8, RET, ENVID...
	To          []string             // the recipients accepted, in order
	RcptOptions []gosmtp.RcptOptions // NOTIFY and ORCPT of each of To
	Data        []byte               // the message as received, once DataSeen
	DataSeen    bool                 // the message was received, whatever the reply
	Accepted    bool                 // the end of DATA was answered 250
	AuthUser    string               // the user the session authenticated as ("" none)
}

// clone copies t's slices, so that the copy does not change with t.
func (t Transaction) clone() Transaction {
	t.To = slices.Clone(t.To)
	t.RcptOptions = slices.Clone(t.RcptOptions)
	return t
}

// Command names the point of a session a fault applies to.
type Command string

// The commands faults apply to. Hello is the first EHLO or HELO of a
// session; Data is the end of DATA, once the message has been read.
const (
	None  Command = ""
	Hello Command = "EHLO"
	Mail  Command = "MAIL"
	Rcpt  Command = "RCPT"
	Data  Command = "DATA"
)

// Option changes the go-smtp server before it starts, for what the
// defaults do not cover:
//
//	fakemx.Start(t, func(s *gosmtp.Server) { s.EnableSMTPUTF8 = false })
//	fakemx.Start(t, func(s *gosmtp.Server) { s.TLSConfig = cfg }) // offers STARTTLS
//
// The defaults: domain mx.fake.test, DSN and SMTPUTF8 offered, 30 s read
// and write timeouts, no size limit, no TLS, errors not logged.
type Option func(*gosmtp.Server)

// Server is a running fake MX.
type Server struct {
	Addr string // host:port it listens on

	srv    *gosmtp.Server
	ln     net.Listener
	served chan struct{} // closed when Serve has returned
	closed chan struct{} // closed by Close: ends delays
	once   sync.Once

	mu       sync.Mutex
	txs      []*Transaction
	changed  chan struct{} // closed and replaced when a message is accepted
	conns    int
	datas    int
	mailErr  *gosmtp.SMTPError
	rcptErr  func(rcpt string) *gosmtp.SMTPError
	dataErr  func(n int) *gosmtp.SMTPError
	hangUpAt Command
	delay    map[Command]time.Duration
	// AUTH (RequireAuth): the one user and password, and every attempt.
	authUser, authPass string
	auths              []AuthAttempt
}

// AuthAttempt is one AUTH PLAIN the server received.
type AuthAttempt struct {
	User, Password string
	TLS            bool // over TLS
	OK             bool
}

// Start starts a fake MX on 127.0.0.1:0; it is closed when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakemx: %v", err)
	}
	s := Serve(l, opts...)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Serve runs a fake MX on l until Close.
func Serve(l net.Listener, opts ...Option) *Server {
	s := &Server{
		Addr:    l.Addr().String(),
		ln:      l,
		served:  make(chan struct{}),
		closed:  make(chan struct{}),
		changed: make(chan struct{}),
		delay:   map[Command]time.Duration{},
	}
	s.srv = gosmtp.NewServer(gosmtp.BackendFunc(s.newSession))
	s.srv.Domain = "mx.fake.test"
	s.srv.EnableDSN = true
	s.srv.EnableSMTPUTF8 = true
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.ErrorLog = nopLogger{}
	for _, o := range opts {
		o(s.srv)
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(countingListener{l, s})
	}()
	return s
}

// Close stops the server: it closes the listener and every connection,
// ends every delay, and waits until the server has stopped accepting.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.srv.Close()
		// Serve may not have handed l to go-smtp yet, whose Close would
		// then miss it: close it here too, so that Serve always returns.
		_ = s.ln.Close()
		<-s.served
	})
	return err
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

// countingListener counts the connections accepted.
type countingListener struct {
	net.Listener
	s *Server
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.mu.Lock()
		l.s.conns++
		l.s.mu.Unlock()
	}
	return c, err
}

// FailMail makes MAIL FROM answer err (nil: accepted again).
func (s *Server) FailMail(err *gosmtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mailErr = err
}

// FailRcpt makes RCPT TO answer err for the recipients for which match
// returns true, replacing any earlier RCPT fault (nil match: every
// recipient accepted again).
func (s *Server) FailRcpt(match func(rcpt string) bool, err *gosmtp.SMTPError) {
	if match == nil {
		s.FailRcptFunc(nil)
		return
	}
	s.FailRcptFunc(func(r string) *gosmtp.SMTPError {
		if match(r) {
			return err
		}
		return nil
	})
}

// FailRcptFunc makes RCPT TO answer what f returns for the recipient,
// when that is not nil (nil f: every recipient accepted again). f is
// called on the session's goroutine, without the server's lock.
func (s *Server) FailRcptFunc(f func(rcpt string) *gosmtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptErr = f
}

// FailData makes the reply to the end of DATA err (nil: 250 again).
func (s *Server) FailData(err *gosmtp.SMTPError) {
	if err == nil {
		s.FailDataFunc(nil)
		return
	}
	s.FailDataFunc(func(int) *gosmtp.SMTPError { return err })
}

// FailDataFunc makes the reply to the end of the n-th DATA (counted from
// 1 over the server's life, in the order the messages were read) what f
// returns, when that is not nil (nil f: 250 again). f is called on the
// session's goroutine, without the server's lock, as soon as the message
// has been read (before a Delay or HangUpAt of Data).
func (s *Server) FailDataFunc(f func(n int) *gosmtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dataErr = f
}

// HangUpAt makes the server close the connection instead of answering c
// (None: answer again). At Data the message has been read, and is in
// Transactions with DataSeen, but not accepted.
func (s *Server) HangUpAt(c Command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangUpAt = c
}

// Delay makes the server wait d before it answers c (0: answer at once).
// Close ends the wait, and the session: a message whose answer was
// delayed is not accepted.
func (s *Server) Delay(c Command, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.delay, c)
		return
	}
	s.delay[c] = d
}

// RequireAuth makes the server offer AUTH PLAIN (over TLS only, unless an
// Option sets AllowInsecureAuth), accept user with password, answer 535
// 5.7.8 to anything else, and refuse MAIL with 530 5.7.0 from a session
// that did not authenticate. An empty user turns AUTH off again.
func (s *Server) RequireAuth(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authUser, s.authPass = user, password
}

// AuthAttempts returns every AUTH the server received, in order.
func (s *Server) AuthAttempts() []AuthAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auths)
}

// Transactions returns a copy of every transaction begun so far, in
// order, complete or not.
func (s *Server) Transactions() []Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Transaction, 0, len(s.txs))
	for _, tx := range s.txs {
		out = append(out, tx.clone())
	}
	return out
}

// Messages returns a copy of the transactions whose message was accepted,
// in the order they were.
func (s *Server) Messages() []Transaction {
	msgs, _ := s.messages()
	return msgs
}

// messages returns Messages and a channel closed when the next message is
// accepted.
func (s *Server) messages() ([]Transaction, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Transaction
	for _, tx := range s.txs {
		if tx.Accepted {
			out = append(out, tx.clone())
		}
	}
	return out, s.changed
}

// Connections is the number of connections accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// WaitMessages waits until at least n messages were accepted and returns
// them (Messages); it fails the test with t.Fatalf if they were not
// within timeout. It wakes on every accepted message, not on a timer.
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []Transaction {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		msgs, changed := s.messages()
		if len(msgs) >= n {
			return msgs
		}
		select {
		case <-changed:
		case <-deadline.C:
			if msgs = s.Messages(); len(msgs) >= n {
				return msgs
			}
			t.Fatalf("fake MX %s: %d messages within %v, want %d (%d transactions begun)",
				s.Addr, len(msgs), timeout, n, len(s.Transactions()))
		}
	}
}

// errHangUp is what a session returns after closing its connection; the
// client never sees it.
var errHangUp = errors.New("fakemx: hung up")

// before runs the faults that come before the answer to c: the delay,
// then the hang-up. It reports false when the connection was closed (by
// the hang-up, or by Close during the delay).
func (s *Server) before(c Command, conn *gosmtp.Conn) bool {
	s.mu.Lock()
	d, hangUp := s.delay[c], s.hangUpAt == c && c != None
	s.mu.Unlock()
	if d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-s.closed: // the connection is closed too: no answer
			timer.Stop()
			return false
		}
	}
	if hangUp {
		_ = conn.Conn().Close()
		return false
	}
	return true
}

func (s *Server) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	if !s.before(Hello, c) {
		return nil, errHangUp
	}
	return &session{s: s, conn: c}, nil
}

// session is one SMTP session; go-smtp calls its methods from the
// connection's goroutine, one at a time.
type session struct {
	s      *Server
	conn   *gosmtp.Conn
	tx     *Transaction // the current transaction, nil before MAIL
	authed string       // the user authenticated as
}

// AuthMechanisms offers PLAIN when RequireAuth is on.
func (ss *session) AuthMechanisms() []string {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.authUser == "" {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth checks PLAIN credentials against RequireAuth's.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, &gosmtp.SMTPError{Code: 504, EnhancedCode: gosmtp.EnhancedCode{5, 5, 4}, Message: "Unrecognized authentication mechanism"}
	}
	return sasl.NewPlainServer(func(identity, user, password string) error {
		_, isTLS := ss.conn.TLSConnectionState()
		s := ss.s
		s.mu.Lock()
		defer s.mu.Unlock()
		ok := s.authUser != "" && user == s.authUser && password == s.authPass && (identity == "" || identity == user)
		s.auths = append(s.auths, AuthAttempt{User: user, Password: password, TLS: isTLS, OK: ok})
		if !ok {
			return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		ss.authed = user
		return nil
	}), nil
}

func (ss *session) Reset()        { ss.tx = nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, opts *gosmtp.MailOptions) error {
	if !ss.s.before(Mail, ss.conn) {
		return errHangUp
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mailErr != nil {
		return s.mailErr
	}
	if s.authUser != "" && ss.authed == "" {
		return &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	_, isTLS := ss.conn.TLSConnectionState()
	ss.tx = &Transaction{Helo: ss.conn.Hostname(), TLS: isTLS, From: from, AuthUser: ss.authed}
	if opts != nil {
		ss.tx.MailOptions = *opts
	}
	s.txs = append(s.txs, ss.tx)
	return nil
}

func (ss *session) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if !ss.s.before(Rcpt, ss.conn) {
		return errHangUp
	}
	s := ss.s
	s.mu.Lock()
	f := s.rcptErr
	s.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	var o gosmtp.RcptOptions
	if opts != nil {
		o = *opts
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.tx.To = append(ss.tx.To, to)
	ss.tx.RcptOptions = append(ss.tx.RcptOptions, o)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	s.datas++
	n, f := s.datas, s.dataErr
	ss.tx.Data, ss.tx.DataSeen = b, true
	s.mu.Unlock()
	var refusal *gosmtp.SMTPError
	if f != nil {
		refusal = f(n)
	}
	if !s.before(Data, ss.conn) {
		return errHangUp
	}
	if refusal != nil {
		return refusal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.tx.Accepted = true
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}
