package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/ratelog"
)

// shutdownGrace is how long Close lets the sessions finish the command in
// progress and write their -ERR before it closes their connections.
const shutdownGrace = 5 * time.Second

// tooManyConnections is written to a connection over the limits, instead
// of the greeting, and the connection is closed.
const tooManyConnections = "-ERR [" + codeSysTemp + "] too many connections, try again later\r\n"

// ErrNoTLS is ServeTLS's error when the Config has no TLSConfig.
var ErrNoTLS = mail.PermanentError("pop3: implicit TLS needs a TLSConfig")

// Server is a POP3 server. Create it with NewServer; Serve (STLS offered
// when the Config has TLS) and ServeTLS (implicit TLS, pop3s) may be
// called for several listeners, which then share the limits. Close ends
// everything. All methods are safe for concurrent use.
type Server struct {
	cfg     Config
	backend Backend
	log     *slog.Logger
	// abuseLog is log for the lines a client can cause at will (refused
	// connections, failed logins): one line per kind a second, with the
	// count of those dropped (ratelog).
	abuseLog *slog.Logger
	guard    *guard.Guard
	limiter  Limiter

	// ctx is the parent of every session's context; Close cancels it
	// after the grace period.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	wg        sync.WaitGroup

	panics    atomic.Int64
	closeOnce sync.Once
}

// NewServer returns a server for cfg over b. log may be nil (discard).
func NewServer(cfg Config, b Backend, log *slog.Logger) *Server {
	cfg = cfg.WithDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, backend: b, log: log, ctx: ctx, cancel: cancel,
		abuseLog:  slog.New(ratelog.New(log.Handler(), time.Second)),
		guard:     cfg.Guard,
		limiter:   cfg.Limiter,
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
	}
	if s.guard == nil {
		s.guard = guard.New(cfg.Auth)
	}
	if s.limiter == nil {
		s.limiter = newConnLimits(cfg.MaxConnections, cfg.MaxConnectionsPerIP)
	}
	return s
}

// Serve accepts connections on l until l fails or Close is called, and
// serves each in its own goroutine; STLS is offered when the Config has a
// TLSConfig. It returns nil after Close.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, false) }

// ServeTLS is Serve for implicit TLS (pop3s, RFC 8314 §3.3): every
// connection starts with the TLS handshake.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLSConfig == nil {
		l.Close()
		return ErrNoTLS
	}
	return s.serve(l, true)
}

func (s *Server) serve(l net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait, as net/http
			// does, rather than spin or give up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.abuseLog.Warn("POP3 accept failed; retrying", "err", err, "delay", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		s.accept(c, implicitTLS)
	}
}

// accept admits c within the limits and starts its session.
func (s *Server) accept(c net.Conn, implicitTLS bool) {
	ip := hostIP(c.RemoteAddr())
	release, ok := s.limiter.Admit(ip)
	if !ok {
		s.abuseLog.Info("POP3 connection refused: too many connections", "client", ip)
		// A fresh socket's send buffer takes the line at once; the
		// deadline only guards against a pathological peer.
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte(tooManyConnections))
		c.Close()
		return
	}
	sess := newSession(s, c, ip, implicitTLS)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close()
		release()
		return
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer release()
		defer func() {
			s.mu.Lock()
			delete(s.sessions, sess)
			s.mu.Unlock()
		}()
		sess.run()
	}()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Close stops accepting and ends every session: each finishes the command
// in progress and is answered "-ERR [SYS/TEMP] server shutting down"
// (nothing is deleted unless a QUIT's deletion had begun, which then
// completes and is answered by its result). After a grace period of 5 s,
// the connections still open are closed. Close waits for every session
// goroutine and is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		for l := range s.listeners {
			l.Close()
		}
		sessions := make([]*session, 0, len(s.sessions))
		for sess := range s.sessions {
			sessions = append(sessions, sess)
		}
		s.mu.Unlock()
		for _, sess := range sessions {
			sess.interrupt(reasonShutdown)
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			s.log.Warn("POP3 sessions still running after the grace period; closing their connections", "sessions", len(sessions))
			s.cancel()
			for _, sess := range sessions {
				sess.closeConn()
			}
			<-done
		}
		s.cancel()
	})
	return nil
}

// Sessions returns the number of connections being served.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// PanicsRecovered returns how many panics the sessions recovered from.
// Every one is a bug; tests assert it stays 0.
func (s *Server) PanicsRecovered() int64 { return s.panics.Load() }

// recovered records a recovered panic.
func (s *Server) recovered(where string, p any, stack []byte) {
	s.panics.Add(1)
	s.log.Error("panic recovered in POP3 session", "in", where, "panic", fmt.Sprint(p), "stack", string(stack))
}

// tlsConfig is the configuration of a server-side TLS connection.
func (s *Server) tlsConfig() *tls.Config { return s.cfg.TLSConfig }

// hostIP returns the IP of a TCP address; the invalid address for other
// kinds of address (net.Pipe in tests).
func hostIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
