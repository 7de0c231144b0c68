package smtp

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// tooManyConnections is written to a connection over a limit, before the
// greeting, and the connection is closed.
const tooManyConnections = "421 4.7.0 Too many connections\r\n"

// limiter counts the open connections of one Server, in total and per
// client IP, and can close them all. go-smtp has no connection cap, so
// every listener a Server serves is wrapped with one limiter.
//
// Safe for concurrent use.
type limiter struct {
	max, perIP int
	onReject   func(reason string)

	mu     sync.Mutex
	closed bool
	byIP   map[string]int
	conns  map[*limitedConn]struct{}
}

func newLimiter(max, perIP int, onReject func(reason string)) *limiter {
	return &limiter{
		max:      max,
		perIP:    perIP,
		onReject: onReject,
		byIP:     make(map[string]int),
		conns:    make(map[*limitedConn]struct{}),
	}
}

// admit registers c, or returns the reason it may not be served.
func (l *limiter) admit(c *limitedConn) (reason string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return "closed", false
	case len(l.conns) >= l.max:
		return "total", false
	case l.byIP[c.ip] >= l.perIP:
		return "per-ip", false
	}
	l.conns[c] = struct{}{}
	l.byIP[c.ip]++
	return "", true
}

// release unregisters c. It is called once per admitted connection.
func (l *limiter) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.conns[c]; !ok {
		return
	}
	delete(l.conns, c)
	if l.byIP[c.ip]--; l.byIP[c.ip] <= 0 {
		delete(l.byIP, c.ip)
	}
}

// open returns the number of admitted connections not yet closed.
func (l *limiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// shutdown refuses further connections and closes every open one.
func (l *limiter) shutdown() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*limitedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// limitListener wraps a net.Listener: Accept answers connections over a
// limit with 421 itself and never hands them to go-smtp.
type limitListener struct {
	net.Listener
	lim *limiter
}

// Accept returns the next connection within the limits.
func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, ip: hostIP(c.RemoteAddr()), lim: ll.lim}
		reason, ok := ll.lim.admit(lc)
		if ok {
			return lc, nil
		}
		if reason == "closed" {
			c.Close()
			return nil, net.ErrClosed
		}
		ll.lim.onReject(reason)
		// A fresh socket's send buffer takes the line at once; the
		// deadline only guards against a pathological peer.
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte(tooManyConnections))
		c.Close()
	}
}

// limitedConn is an admitted connection. Closing it releases its place.
// It can also be told to close right after the next reply is written,
// which is how the session ends a connection with a 421 reply (go-smtp
// offers no way to do that from a session method).
type limitedConn struct {
	net.Conn
	ip  string
	lim *limiter

	closeAfterWrite atomic.Bool
	closeOnce       sync.Once
	closeErr        error
}

// Write writes b, then closes the connection if closeAfterNextWrite was
// called.
func (c *limitedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if c.closeAfterWrite.Load() {
		c.Close()
	}
	return n, err
}

// Close closes the connection and releases its place; it is idempotent.
func (c *limitedConn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.lim.release(c)
	})
	return c.closeErr
}

// closeAfterNextWrite makes the next Write close the connection once the
// bytes are written. Over TLS the next write of the TLS connection is the
// record carrying the next reply line.
func (c *limitedConn) closeAfterNextWrite() { c.closeAfterWrite.Store(true) }

// asLimited finds the *limitedConn under c (which may be the TLS
// connection go-smtp made on STARTTLS); nil if there is none.
func asLimited(c net.Conn) *limitedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, _ := c.(*limitedConn)
	return lc
}

// hostIP returns the IP of a TCP address as text, or the address's string
// form for other kinds of address (net.Pipe in tests).
func hostIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}
