package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// state is a session's state (RFC 1939 §3). The UPDATE state is the QUIT
// of the TRANSACTION state: it ends the session, so it has no value here.
type state int

const (
	stateAuthorization state = iota
	stateTransaction
)

// Why a session was told to end from outside (interrupt).
const (
	reasonNone int32 = iota
	reasonShutdown
	reasonLost
)

// Errors of reading a command line.
var (
	errLineTooLong = errors.New("line too long")
	errSkipTooLong = errors.New("line too long to skip")
	errInterrupted = errors.New("session interrupted")
)

// session is one connection, served by one goroutine (run). Only
// interrupt and closeConn are called from elsewhere.
type session struct {
	srv         *Server
	raw         net.Conn // the accepted connection
	conn        net.Conn // raw, or the TLS connection over it
	r           *bufio.Reader
	w           *bufio.Writer
	clientIP    netip.Addr
	implicitTLS bool
	tls         bool

	state   state
	user    string // USER's argument, until PASS
	account string

	commands     int // commands before login
	errors       int // client errors before login
	authFailures int
	end          bool // close the connection after the current reply

	drop Maildrop
	msgs []entry
	buf  []byte // for streaming messages, allocated at the first RETR

	// ctx is cancelled when the session ends or the server's grace
	// period is over; backend calls take it.
	ctx    context.Context
	cancel context.CancelFunc

	reason   atomic.Int32  // why interrupt was called; reasonNone
	stop     chan struct{} // closed by interrupt
	stopOnce sync.Once
	done     chan struct{} // closed when run returns
}

// entry is a message of the session's list.
type entry struct {
	Message
	uid     string // UniqueID(ID)
	deleted bool   // marked by DELE
}

func newSession(srv *Server, c net.Conn, ip netip.Addr, implicitTLS bool) *session {
	ctx, cancel := context.WithCancel(srv.ctx)
	s := &session{
		srv: srv, raw: c, conn: c, clientIP: ip, implicitTLS: implicitTLS,
		ctx: ctx, cancel: cancel,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.r = bufio.NewReaderSize(c, srv.cfg.MaxLineLength)
	s.w = bufio.NewWriter(timedWriter{c, srv.cfg.WriteTimeout})
	return s
}

// timedWriter sets the write deadline before each write, so a client that
// stops reading (a long RETR) is dropped after the write timeout.
type timedWriter struct {
	c net.Conn
	d time.Duration
}

func (t timedWriter) Write(p []byte) (int, error) {
	if err := t.c.SetWriteDeadline(time.Now().Add(t.d)); err != nil {
		return 0, err
	}
	return t.c.Write(p)
}

// run serves the connection until QUIT, an error, a timeout or an
// interrupt.
func (s *session) run() {
	defer s.finish()
	defer func() {
		if p := recover(); p != nil {
			s.srv.recovered("session", p, debug.Stack())
		}
	}()
	if s.implicitTLS && !s.startTLS() {
		return
	}
	// RFC 1939 §4: "Once the TCP connection has been opened by a POP3
	// client, the POP3 server issues a one line greeting."
	s.ok(s.srv.cfg.Hostname + " POP3 server ready")
	for !s.end {
		line, err := s.readLine()
		switch {
		case err == nil:
			s.handle(line)
		case errors.Is(err, errLineTooLong):
			s.clientError(textLineTooLong)
		case errors.Is(err, errSkipTooLong):
			s.fail("", textLineTooLong+", closing the connection")
			s.end = true
		case s.reason.Load() == reasonShutdown:
			s.fail(codeSysTemp, textShutdown)
			s.end = true
		case s.reason.Load() == reasonLost:
			s.fail(codeSysTemp, textLost)
			s.end = true
		default:
			// EOF, a reset, or the autologout timer: RFC 1939 §3 "the
			// server should close the TCP connection without removing
			// any messages or sending any response to the client".
			return
		}
	}
	s.w.Flush()
}

// finish ends the session: the maildrop's lock is released (nothing is
// deleted here: that happened at QUIT, if at all) and the connection
// closed.
func (s *session) finish() {
	close(s.done)
	s.release()
	s.cancel()
	s.conn.Close()
	s.raw.Close()
}

// release gives the maildrop lock back (once).
func (s *session) release() {
	if s.drop == nil {
		return
	}
	if err := s.drop.Close(); err != nil {
		s.srv.log.Warn("POP3: releasing the maildrop failed", "account", s.account, "err", err)
	}
	s.drop = nil
}

// interrupt tells the session to end after the command in progress, with
// reason's -ERR. A read waiting for the next command returns at once.
func (s *session) interrupt(reason int32) {
	if !s.reason.CompareAndSwap(reasonNone, reason) {
		return
	}
	s.stopOnce.Do(func() { close(s.stop) })
	s.raw.SetReadDeadline(time.Now())
}

// closeConn closes the connection under the session, whatever it is doing.
func (s *session) closeConn() { s.raw.Close() }

// readLine returns the next command line (with its line end). Before it
// waits for the client it sends what is buffered: pipelined commands
// (RFC 2449 §6.6) are answered in one write. A line longer than
// MaxLineLength is skipped to its end and reported as errLineTooLong, or
// as errSkipTooLong when it goes on past MaxSkipLength.
func (s *session) readLine() ([]byte, error) {
	if s.r.Buffered() == 0 {
		if err := s.w.Flush(); err != nil {
			return nil, err
		}
	}
	timeout := s.srv.cfg.LoginTimeout
	if s.state == stateTransaction {
		timeout = s.srv.cfg.IdleTimeout
	}
	// The order matters against interrupt, which sets the reason and then
	// a past deadline: either the deadline below is set first (and
	// interrupt's replaces it) or the reason is seen here.
	if s.reason.Load() != reasonNone {
		return nil, errInterrupted
	}
	s.conn.SetReadDeadline(time.Now().Add(timeout))
	if s.reason.Load() != reasonNone {
		return nil, errInterrupted
	}
	line, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		skipped := len(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = s.r.ReadSlice('\n')
			skipped += len(line)
			if skipped > s.srv.cfg.MaxSkipLength {
				return nil, errSkipTooLong
			}
		}
		if err == nil {
			return nil, errLineTooLong
		}
	}
	if err != nil {
		if s.reason.Load() != reasonNone {
			return nil, errInterrupted
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			// A last line without its line end: the client is gone.
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return line, nil
}

// handle runs one command line. A panic in a command is recovered: it is
// counted, answered -ERR [SYS/TEMP] and ends the session (deleting
// nothing).
func (s *session) handle(line []byte) {
	defer func() {
		if p := recover(); p != nil {
			s.srv.recovered("command", p, debug.Stack())
			s.fail(codeSysTemp, textTemporary)
			s.end = true
		}
	}()
	cmd, err := parseCommand(line)
	if err != nil {
		s.clientError(err.Error())
		return
	}
	if s.state == stateAuthorization {
		s.commands++
		if s.commands > s.srv.cfg.MaxCommandsBeforeAuth {
			s.srv.abuseLog.Info("POP3 connection closed: too many commands before login", "client", s.clientIP)
			s.fail("", "too many commands before login, closing the connection")
			s.end = true
			return
		}
	}
	s.dispatch(cmd)
}

// dispatch runs cmd in the session's state. RFC 1939 §4 to §7 name the
// commands of each state; CAPA (RFC 2449 §5) is valid in both, STLS
// (RFC 2595 §4) and AUTH (RFC 5034 §4) only before login.
func (s *session) dispatch(cmd command) {
	switch cmd.Name {
	case "CAPA":
		s.cmdCapa(cmd)
		return
	case "QUIT":
		s.cmdQuit(cmd)
		return
	}
	if s.state == stateAuthorization {
		switch cmd.Name {
		case "USER":
			s.cmdUser(cmd)
		case "PASS":
			s.cmdPass(cmd)
		case "AUTH":
			s.cmdAuth(cmd)
		case "STLS":
			s.cmdStls(cmd)
		case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL":
			s.clientError("not logged in")
		default:
			s.clientError(errBadKeyword.Error())
		}
		return
	}
	switch cmd.Name {
	case "STAT":
		s.cmdStat(cmd)
	case "LIST":
		s.cmdList(cmd)
	case "RETR":
		s.cmdRetr(cmd)
	case "DELE":
		s.cmdDele(cmd)
	case "NOOP":
		s.cmdNoop(cmd)
	case "RSET":
		s.cmdRset(cmd)
	case "TOP":
		s.cmdTop(cmd)
	case "UIDL":
		s.cmdUidl(cmd)
	case "USER", "PASS", "AUTH", "STLS":
		s.clientError("already logged in")
	default:
		s.clientError(errBadKeyword.Error())
	}
}

// startTLS runs the server side of a TLS handshake on the connection
// (implicit TLS, or after STLS) within the login timeout, and switches the
// session's reader and writer to it. Whatever the client sent before the
// handshake and the session had buffered is dropped (CVE-2011-0411's
// command injection). It reports false when the handshake failed: the
// connection is then unusable and the session ends.
func (s *session) startTLS() bool {
	tc := tls.Server(s.raw, s.srv.tlsConfig())
	s.raw.SetDeadline(time.Now().Add(s.srv.cfg.LoginTimeout))
	err := tc.HandshakeContext(s.ctx)
	s.raw.SetDeadline(time.Time{})
	if err != nil {
		s.srv.abuseLog.Info("POP3 TLS handshake failed", "client", s.clientIP, "err", err)
		return false
	}
	s.conn, s.tls = tc, true
	s.r = bufio.NewReaderSize(tc, s.srv.cfg.MaxLineLength)
	s.w.Reset(timedWriter{tc, s.srv.cfg.WriteTimeout})
	return true
}

// pause waits d, or until the session is told to end.
func (s *session) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stop:
	case <-s.ctx.Done():
	}
}
