package smtp

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/homing-mail/homing/guard"
)

// tooManyConnections is written to a connection over a limit, before the
// greeting, and the connection is closed.
const tooManyConnections = "421 4.7.0 Too many connections\r\n"

// Members' addresses: a connection from an address that authenticated as a
// cluster member within memberMemory is not counted against the per-IP and
// per-network limits from its start (its transfers come in parallel bursts,
// before any of them has authenticated); at most maxMemberAddrs are kept.
const (
	memberMemory   = 10 * time.Minute
	maxMemberAddrs = 1024
)

// Reasons a connection is refused, as the limiter reports them (the
// metric's reason label).
const (
	rejectTotal    = "total"
	rejectPerIP    = "per-ip"
	rejectPerNet   = "per-network"
	rejectReserved = "reserved"
	rejectClosed   = "closed"
)

// limits are a limiter's settings.
type limits struct {
	max, perIP, perNet int
	// reserve slots of max go only to networks holding fewer than light.
	reserve, light int
	// stressAt open connections put the server under stress: read
	// deadlines are then at most stressTimeout away. The stress ends at
	// calm open connections or fewer (a tenth below stressAt, so that a
	// load around the threshold does not flap in and out of it).
	stressAt, calm int
	stressTimeout  time.Duration
	nets           guard.Networks
}

func limitsOf(cfg Config) limits {
	stressAt := max((cfg.MaxConnections*cfg.StressPercent+99)/100, 1)
	return limits{
		max:           cfg.MaxConnections,
		perIP:         cfg.MaxConnectionsPerIP,
		perNet:        cfg.MaxConnectionsPerNetwork,
		reserve:       max(cfg.ReservedConnections, 0),
		light:         max(cfg.MaxConnectionsPerNetwork/10, 1),
		stressAt:      stressAt,
		calm:          stressAt - max(stressAt/10, 1),
		stressTimeout: cfg.StressCommandTimeout,
		nets:          cfg.Auth.Networks(),
	}
}

// limiter counts the open connections of one Server, in total, per client
// IP and per client network, and can close them all. go-smtp has no
// connection cap, so every listener a Server serves is wrapped with one
// limiter. It also knows when the server is under stress (most slots
// taken) and shortens the read deadlines of its connections then.
//
// Connections of cluster members are counted in the total only: a
// connection that authenticates as a member gives its per-IP and
// per-network places back (member), and the member's address is then
// admitted without them for a while.
//
// Safe for concurrent use.
type limiter struct {
	limits
	onReject func(reason string)
	onStress func(on bool, open int)
	onMember func()

	stressed atomic.Bool

	mu      sync.Mutex
	closed  bool
	byIP    *guard.Counter[netip.Addr]
	byNet   *guard.Counter[netip.Prefix]
	conns   map[*limitedConn]struct{}
	members map[netip.Addr]time.Time // member addresses -> last authentication
}

func newLimiter(l limits, onReject func(reason string), onStress func(on bool, open int), onMember func()) *limiter {
	return &limiter{
		limits:   l,
		onReject: onReject,
		onStress: onStress,
		onMember: onMember,
		byIP:     guard.NewCounter[netip.Addr](l.perIP),
		byNet:    guard.NewCounter[netip.Prefix](l.perNet),
		conns:    make(map[*limitedConn]struct{}),
		members:  make(map[netip.Addr]time.Time),
	}
}

// admit registers c, or returns the reason it may not be served.
func (l *limiter) admit(c *limitedConn) (reason string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return rejectClosed, false
	case len(l.conns) >= l.max:
		return rejectTotal, false
	}
	if seen, ok := l.members[c.ip]; ok && time.Since(seen) < memberMemory {
		c.member = true
	} else {
		switch {
		case l.byIP.Count(c.ip) >= l.perIP:
			return rejectPerIP, false
		case l.byNet.Count(c.net) >= l.perNet:
			return rejectPerNet, false
		case l.max-len(l.conns) <= l.reserve && l.byNet.Count(c.net) >= l.light:
			return rejectReserved, false
		}
		l.byIP.Acquire(c.ip)
		l.byNet.Acquire(c.net)
		c.counted = true
	}
	l.conns[c] = struct{}{}
	l.checkStressLocked()
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
	l.uncountLocked(c)
	l.checkStressLocked()
}

// member marks c as a cluster member's connection: it no longer counts
// against the per-IP and per-network limits, and its address is admitted
// without them for memberMemory.
func (l *limiter) member(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.conns[c]; ok {
		l.uncountLocked(c)
	}
	c.member = true
	if _, known := l.members[c.ip]; !known && len(l.members) >= maxMemberAddrs {
		for a, t := range l.members {
			if time.Since(t) >= memberMemory || len(l.members) >= maxMemberAddrs {
				delete(l.members, a)
			}
		}
	}
	l.members[c.ip] = time.Now()
	if l.onMember != nil {
		l.onMember()
	}
}

func (l *limiter) uncountLocked(c *limitedConn) {
	if c.counted {
		c.counted = false
		l.byIP.Release(c.ip)
		l.byNet.Release(c.net)
	}
}

// checkStressLocked updates the stress state after the number of open
// connections changed. Entering stress shortens the read deadline of
// every open connection that waits for a command.
func (l *limiter) checkStressLocked() {
	was := l.stressed.Load()
	on := len(l.conns) >= l.stressAt || (was && len(l.conns) > l.calm)
	if on == was {
		return
	}
	l.stressed.Store(on)
	if on {
		until := time.Now().Add(l.stressTimeout)
		for c := range l.conns {
			c.clampReadDeadline(until)
		}
	}
	if l.onStress != nil {
		l.onStress(on, len(l.conns))
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
		ip := hostIP(c.RemoteAddr())
		lc := &limitedConn{Conn: c, ip: ip, net: ll.lim.nets.Of(ip), lim: ll.lim}
		reason, ok := ll.lim.admit(lc)
		if ok {
			if ll.lim.stressed.Load() {
				lc.clampReadDeadline(time.Now().Add(ll.lim.stressTimeout))
			}
			return lc, nil
		}
		if reason == rejectClosed {
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
//
// Its read deadlines are at most the stress timeout away while the server
// is under stress, except in the DATA phase (inData).
//
// It coalesces replies (RFC 2920 §3.1: a server may hold its replies
// while more input is buffered): Write only buffers, and the buffer goes
// out in one write when the connection is about to be read (go-smtp's
// reader has nothing buffered left and would block on the socket), when
// more than maxPendingOutput bytes are pending, on flush (before the
// session waits on purpose) and on Close. go-smtp flushes its own writer
// at every reply line, so without this every line is a write(2). The
// connection sits beneath a TLS connection (STARTTLS, implicit TLS),
// whose records are then coalesced the same way; the TLS handshake reads
// after each flight it writes, which flushes it. A write fails with the
// error of the flush; the next Read returns that error, ending the
// session.
type limitedConn struct {
	net.Conn
	ip  netip.Addr   // invalid when the peer is not TCP
	net netip.Prefix // ip's network
	lim *limiter

	// Guarded by lim.mu: counted against the per-IP and per-network
	// limits; a cluster member's connection.
	counted, member bool

	dl     sync.Mutex
	inData bool      // the DATA phase: its deadline is DataTimeout
	readDL time.Time // the read deadline last asked for

	// wmu guards out and werr: Close (and a TLS close alert) may come
	// from another goroutine than the session's.
	wmu  sync.Mutex
	out  []byte // replies not yet written
	werr error  // a write failed: the connection is broken

	closeAfterWrite atomic.Bool
	closeOnce       sync.Once
	closeErr        error
}

// maxPendingOutput is how many bytes of replies a connection holds before
// it writes them without waiting for its reader.
const maxPendingOutput = 8 << 10

// closeFlushTimeout bounds the write of what is pending when the
// connection is closed: a send buffer takes a few reply lines at once, the
// deadline only guards against a peer that reads nothing.
const closeFlushTimeout = time.Second

// Write buffers b (see the type's comment). If closeAfterNextWrite was
// called, the connection is closed once the bytes are written.
func (c *limitedConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	c.out = append(c.out, b...)
	if len(c.out) > maxPendingOutput {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// Read writes the pending replies, then reads: it is called when the
// reader above has no input left, so the client may be waiting for them.
func (c *limitedConn) Read(b []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

// flush writes the pending replies, if any.
func (c *limitedConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

func (c *limitedConn) flushLocked() error {
	if c.werr != nil {
		return c.werr
	}
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.out)
	if cap(c.out) > 2*maxPendingOutput {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	if err != nil {
		c.werr = err
	}
	if c.closeAfterWrite.Load() {
		c.closeConn()
		c.werr = net.ErrClosed
	}
	return err
}

// SetReadDeadline sets the read deadline, at most the stress timeout away
// while the server is under stress (except in the DATA phase). go-smtp
// sets it before every command line it reads; a TLS connection over c
// passes its deadlines on to c.
func (c *limitedConn) SetReadDeadline(t time.Time) error {
	c.dl.Lock()
	defer c.dl.Unlock()
	c.readDL = t
	if !c.inData && c.lim.stressed.Load() {
		if s := time.Now().Add(c.lim.stressTimeout); t.IsZero() || s.Before(t) {
			t = s
		}
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets both deadlines (the read one as SetReadDeadline does).
func (c *limitedConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// clampReadDeadline brings the read deadline to until if it is later
// (outside the DATA phase).
func (c *limitedConn) clampReadDeadline(until time.Time) {
	c.dl.Lock()
	defer c.dl.Unlock()
	if !c.inData && (c.readDL.IsZero() || until.Before(c.readDL)) {
		c.Conn.SetReadDeadline(until)
	}
}

// dataPhase marks the start (true) and end of the DATA phase, whose
// deadline (DataTimeout) stress does not shorten.
func (c *limitedConn) dataPhase(on bool) {
	c.dl.Lock()
	defer c.dl.Unlock()
	c.inData = on
}

// Close writes what is pending (within closeFlushTimeout), closes the
// connection and releases its place; it is idempotent. While a write is
// under way (another goroutine's Close: Server.Close), it closes at once,
// which ends that write.
func (c *limitedConn) Close() error {
	if c.wmu.TryLock() {
		if len(c.out) > 0 && c.werr == nil {
			// The last deadline set may be past (a TLS close alert
			// sets it to now after writing the alert here).
			c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
			c.flushLocked()
		}
		c.werr = net.ErrClosed
		c.wmu.Unlock()
	}
	return c.closeConn()
}

func (c *limitedConn) closeConn() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.lim.release(c)
	})
	return c.closeErr
}

// closeAfterNextWrite makes the connection close once the next reply
// written is out: the next flush of pending replies that writes bytes
// (the reply is written after this call, and the flush follows it).
// Over TLS the bytes are the records of the next reply lines.
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

// hostIP returns the IP of a TCP address; the invalid address for other
// kinds of address (net.Pipe in tests), which all count as one client.
func hostIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
