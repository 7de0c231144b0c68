package imap

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/homing-mail/homing/guard"
)

// Config is the behaviour of an IMAP server. Zero fields take defaults.
type Config struct {
	// TLS is the certificate for STARTTLS and implicit TLS; nil offers
	// neither (then only loopback clients may log in).
	TLS *tls.Config
	// MaxAppend is the largest message APPEND takes (APPENDLIMIT, RFC
	// 7889). Default 32 MiB.
	MaxAppend int64
	// OwnerCheck is how often a session looks whether its account's
	// owner changed (then it ends with BYE). Default 250 ms.
	OwnerCheck time.Duration
	// Resync is how often a selected session asks what changed even
	// without a notice (a notice lost with a member). Default 30 s.
	Resync time.Duration
	// MaxAuthFailures closes a connection after this many failed logins.
	// Default 3.
	MaxAuthFailures int
	// Logger; nil discards.
	Logger *slog.Logger
	// Debug, if set, receives the raw protocol of every connection.
	Debug io.Writer
}

func (c Config) withDefaults() Config {
	if c.MaxAppend <= 0 {
		c.MaxAppend = 32 << 20
	}
	if c.OwnerCheck <= 0 {
		c.OwnerCheck = 250 * time.Millisecond
	}
	if c.Resync <= 0 {
		c.Resync = 30 * time.Second
	}
	if c.MaxAuthFailures <= 0 {
		c.MaxAuthFailures = 3
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Server serves IMAP on any number of listeners.
type Server struct {
	cfg     Config
	backend Backend
	guard   *guard.Guard
	log     *slog.Logger

	plain    *imapserver.Server // connections seen through filterConn
	mu       sync.Mutex
	sessions map[*session]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// The capabilities imapserver serves for us (the rest: wire.go).
var serverCaps = imap.CapSet{
	imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {},
	imap.CapNamespace: {}, imap.CapUIDPlus: {}, imap.CapESearch: {}, imap.CapSearchRes: {},
	imap.CapListExtended: {}, imap.CapListStatus: {}, imap.CapMove: {}, imap.CapStatusSize: {},
	imap.CapBinary: {}, imap.CapChildren: {}, imap.CapSpecialUse: {}, imap.CapCreateSpecialUse: {},
	imap.CapLiteralPlus: {},
}

// New returns a server over backend; g limits logins (shared with SMTP
// AUTH); nil g allows every attempt.
func New(cfg Config, backend Backend, g *guard.Guard) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, backend: backend, guard: g, log: cfg.Logger, sessions: map[*session]struct{}{}}
	s.plain = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps:       serverCaps,
		Logger:     slogPrintf{s.log},
		// Login is refused by the session itself without TLS unless the
		// client is on loopback (wire.go rewrites the capabilities).
		InsecureAuth: true,
		DebugWriter:  cfg.Debug,
	})
	return s
}

type slogPrintf struct{ l *slog.Logger }

// Printf logs at warn: imapserver reports only failures this way (a
// response it could not write, a command it could not read, a panic),
// at most one line per connection for the failures a client can cause.
func (p slogPrintf) Printf(format string, args ...interface{}) {
	p.l.Warn("imapserver: " + fmt.Sprintf(format, args...))
}

// Serve accepts connections on ln until Close; implicitTLS: the listener
// is --imaps (RFC 8314 §3.2: TLS from the first byte).
func (s *Server) Serve(ln net.Listener, implicitTLS bool) error {
	if implicitTLS && s.cfg.TLS == nil {
		return errors.New("imap: implicit TLS needs a certificate")
	}
	return s.plain.Serve(&filterListener{Listener: ln, s: s, implicitTLS: implicitTLS})
}

// Close ends every session with BYE and stops the listeners.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var all []*session
	for ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.bye("Server shutting down")
	}
	err := s.plain.Close()
	s.wg.Wait()
	return err
}

// Sessions counts the open sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// filterListener wraps every connection in a filterConn (with TLS first
// on an implicit-TLS listener).
type filterListener struct {
	net.Listener
	s           *Server
	implicitTLS bool
}

func (l *filterListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	h := &connState{s: l.s, remote: remoteAddr(c)}
	if l.implicitTLS {
		t := tls.Server(c, l.s.cfg.TLS)
		fc := newFilterConn(t, true, nil, h)
		h.fc = fc
		return fc, nil
	}
	fc := newFilterConn(c, false, l.s.cfg.TLS, h)
	h.fc = fc
	return fc, nil
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		return a.Unmap()
	}
	return netip.Addr{}
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	fc, ok := c.NetConn().(*filterConn)
	if !ok {
		return nil, nil, errors.New("imap: a connection without its filter")
	}
	h := fc.handler.(*connState)
	ss := newSession(s, c, h)
	h.sess = ss
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	return ss, nil, nil
}

func (s *Server) forget(ss *session) {
	s.mu.Lock()
	if _, ok := s.sessions[ss]; ok {
		delete(s.sessions, ss)
		s.wg.Done()
	}
	s.mu.Unlock()
}
