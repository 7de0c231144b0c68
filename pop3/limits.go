package pop3

import (
	"net/netip"
	"sync"

	"github.com/homing-mail/homing/guard"
)

// Limiter decides which connections a server serves. Implementations must
// be safe for concurrent use.
type Limiter interface {
	// Admit asks to serve a connection from client (invalid when the
	// peer is not TCP). It returns the function that gives the place
	// back (the server calls it once, when the connection has closed),
	// or ok false: then the server answers -ERR [SYS/TEMP] and closes.
	Admit(client netip.Addr) (release func(), ok bool)
}

// connLimits is the default Limiter: at most max connections in total and
// perIP per client address.
type connLimits struct {
	max   int
	byIP  *guard.Counter[netip.Addr]
	mu    sync.Mutex
	total int
}

func newConnLimits(max, perIP int) *connLimits {
	return &connLimits{max: max, byIP: guard.NewCounter[netip.Addr](perIP)}
}

// Admit implements Limiter.
func (l *connLimits) Admit(client netip.Addr) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || !l.byIP.Acquire(client) {
		return nil, false
	}
	l.total++
	return sync.OnceFunc(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.total--
		l.byIP.Release(client)
	}), true
}
