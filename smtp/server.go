package smtp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/ratelog"
)

// shutdownTimeout bounds how long Close waits for connection goroutines
// after it has closed their connections.
const shutdownTimeout = 10 * time.Second

// Server is one SMTP listener's server: go-smtp with Homing's session,
// limits and metrics. Create it with NewServer; Serve may be called for
// several listeners, which then share the connection limits. Close stops
// everything. All methods are safe for concurrent use.
type Server struct {
	cfg  Config
	dir  Directory
	enq  Enqueuer
	auth Authenticator
	log  *slog.Logger
	// abuseLog is log for the lines a client can cause at will (refused
	// connections, failed logins, errors): one line per kind a second,
	// with the count of those dropped (ratelog).
	abuseLog *slog.Logger
	m        *Metrics

	gs  *gosmtp.Server
	lim *limiter
	// guard checks logins (AUTH) and holds their budgets; netRate and
	// senderRate bound the messages per client network and per
	// authenticated sender.
	guard      *guard.Guard
	netRate    *guard.Rate
	senderRate *guard.Rate

	// ctx is the parent of every session's context; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	panics    atomic.Int64
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
	// listeners are those Serve was given, closed by Close too: go-smtp's
	// Shutdown closes only the ones its Serve has registered, and a Close
	// between our Serve's check and go-smtp's would leave one accepting.
	lnMu      sync.Mutex
	listeners []net.Listener

	// testHookServe, when set by a test, runs in Serve after the
	// listener is registered, before go-smtp serves it.
	testHookServe func()
}

// NewServer returns a server for cfg. dir and enq are required; auth may be
// nil (then AUTH is not offered, and a submission server accepts no mail),
// log may be nil (discard) and m may be nil (no metrics).
func NewServer(cfg Config, dir Directory, enq Enqueuer, auth Authenticator, log *slog.Logger, m *Metrics) *Server {
	cfg = cfg.WithDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, dir: dir, enq: enq, auth: auth, log: log, m: m, ctx: ctx, cancel: cancel,
		abuseLog: slog.New(ratelog.New(log.Handler(), time.Second))}
	s.guard = cfg.Guard
	if s.guard == nil {
		s.guard = guard.New(cfg.Auth)
	}
	s.netRate = guard.NewRate(cfg.MessageRatePerNetwork, cfg.MessageRateInterval, cfg.Auth.MaxKeys, cfg.Now)
	s.senderRate = guard.NewRate(cfg.MessageRatePerSender, cfg.MessageRateInterval, cfg.Auth.MaxKeys, cfg.Now)
	listener := string(cfg.Source)
	m.prepare(listener)
	s.lim = newLimiter(limitsOf(cfg), func(reason string) {
		m.connectionRejected(listener, reason)
		s.abuseLog.Info("connection refused: too many connections", "limit", reason)
	}, func(on bool, open int) {
		m.stress(listener, on)
		if on {
			log.Warn("SMTP server under stress: most connection slots are taken; command timeout shortened",
				"open", open, "max", cfg.MaxConnections, "timeout", cfg.StressCommandTimeout)
		} else {
			log.Info("SMTP server no longer under stress", "open", open, "max", cfg.MaxConnections)
		}
	}, func() { m.memberConnection(listener) })

	gs := gosmtp.NewServer(gosmtp.BackendFunc(s.newSession))
	gs.Domain = cfg.Hostname
	gs.TLSConfig = cfg.TLSConfig
	gs.MaxMessageBytes = cfg.MaxMessageBytes
	// The session counts distinct recipients itself (duplicates count
	// once); go-smtp would count every accepted RCPT.
	gs.MaxRecipients = 0
	gs.MaxLineLength = cfg.goSMTPLineLimit()
	gs.ReadTimeout = cfg.CommandTimeout
	gs.WriteTimeout = cfg.CommandTimeout
	gs.EnableSMTPUTF8 = true
	gs.EnableDSN = true
	// The session decides per connection whether AUTH is allowed (TLS or
	// loopback); go-smtp's switch is server-wide.
	gs.AllowInsecureAuth = true
	gs.ErrorLog = goSMTPLogger{s}
	s.gs = gs
	return s
}

// Serve accepts connections on l until l fails or Close is called, and
// serves each in its own goroutine. l is wrapped with the server's
// connection limits. It returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	s.lnMu.Lock()
	if s.closing.Load() {
		s.lnMu.Unlock()
		l.Close()
		return nil
	}
	s.listeners = append(s.listeners, l)
	s.lnMu.Unlock()
	if s.testHookServe != nil {
		s.testHookServe()
	}
	err := s.gs.Serve(&limitListener{Listener: l, lim: s.lim})
	if s.closing.Load() {
		return nil
	}
	return err
}

// Close stops accepting, cancels every session's context, closes every
// connection and waits (up to 10 s) for the connection goroutines to end.
// A message whose DATA was in flight gets no 250. Close is idempotent.
// admit asks the Enqueuer whether a message of size bytes may come in
// now (Admitter); nil when it cannot say.
func (s *Server) admit(size int64) error {
	if a, ok := s.enq.(Admitter); ok {
		return a.Admit(size)
	}
	return nil
}

func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.lnMu.Lock()
		s.closing.Store(true)
		listeners := s.listeners
		s.lnMu.Unlock()
		s.cancel()
		s.lim.shutdown()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		// Shutdown closes the listeners and waits for the connection
		// goroutines, which end now that their connections are closed.
		if err := s.gs.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			s.closeErr = err
		}
		// A listener Serve took before go-smtp's Serve registered it:
		// its Accept fails now, and go-smtp's Serve returns.
		for _, l := range listeners {
			_ = l.Close()
		}
		// A connection accepted while the limiter was shutting down is
		// closed by the limiter itself; close any stragglers go-smtp
		// registered meanwhile.
		s.lim.shutdown()
	})
	return s.closeErr
}

// PanicsRecovered returns how many panics the server's sessions recovered
// from (in session methods, or in go-smtp itself). Every one is a bug;
// tests assert it stays 0.
func (s *Server) PanicsRecovered() int64 { return s.panics.Load() }

// recovered records a recovered panic.
func (s *Server) recovered(where string, p any, stack []byte) {
	s.panics.Add(1)
	s.m.panicRecovered(string(s.cfg.Source))
	s.log.Error("panic recovered in SMTP session", "in", where, "panic", fmt.Sprint(p), "stack", string(stack))
}

// newSession is go-smtp's Backend: it runs at the first EHLO/HELO of a
// connection, and again after STARTTLS.
func (s *Server) newSession(c *gosmtp.Conn) (sess gosmtp.Session, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.recovered("NewSession", p, debug.Stack())
			sess, err = nil, errTempFailure()
		}
	}()
	return newSession(s, c), nil
}

// goSMTPLogger sends go-smtp's log lines to slog. go-smtp logs a panic it
// recovered itself as "panic serving ..."; those are counted like the
// session's own.
type goSMTPLogger struct{ s *Server }

func (l goSMTPLogger) Printf(format string, v ...any) { l.log(fmt.Sprintf(format, v...)) }
func (l goSMTPLogger) Println(v ...any)               { l.log(fmt.Sprintln(v...)) }

func (l goSMTPLogger) log(msg string) {
	msg = strings.TrimSpace(msg)
	if strings.HasPrefix(msg, "panic serving") {
		l.s.panics.Add(1)
		l.s.m.panicRecovered(string(l.s.cfg.Source))
		l.s.log.Error("panic recovered by go-smtp", "msg", msg)
		return
	}
	l.s.log.Debug("go-smtp", "msg", msg)
}
