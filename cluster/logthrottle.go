package cluster

import (
	"sync"
	"time"
)

// logThrottle lets through at most one log record of a kind per interval
// and counts the rest, so that whoever can send packets to the gossip port
// (garbage, a node of another cluster) cannot grow the log without bound:
// before it, each undecodable packet made one ERROR line (37,976 lines,
// 6.3 MB in 10 s). The kind of a line is its text with every run of digits
// replaced by '#' (addresses, ports, sizes and counts differ between
// repetitions of one error). The number of kinds it remembers is bounded;
// beyond that, new kinds share one. Safe for concurrent use.
type logThrottle struct {
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*throttled
}

type throttled struct {
	last       time.Time // when a record of the kind was let through
	suppressed int       // records dropped since
}

// maxLogKinds bounds the kinds a logThrottle remembers.
const maxLogKinds = 256

// overflowKind is the kind of every line once maxLogKinds are known.
const overflowKind = "\x00other"

func newLogThrottle(every time.Duration, now func() time.Time) *logThrottle {
	return &logThrottle{every: every, now: now, kinds: map[string]*throttled{}}
}

// allow reports whether a record with text may be written now, and how
// many of its kind were dropped since the last one written (to be written
// with it).
func (l *logThrottle) allow(text string) (ok bool, suppressed int) {
	kind := logKind(text)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.kinds[kind]
	if k == nil {
		if len(l.kinds) >= maxLogKinds-1 { // one place stays for overflowKind
			l.prune(now)
		}
		if len(l.kinds) >= maxLogKinds-1 {
			kind = overflowKind
			k = l.kinds[kind]
		}
		if k == nil {
			k = &throttled{}
			l.kinds[kind] = k
			k.last = now
			return true, 0
		}
	}
	if now.Sub(k.last) < l.every {
		k.suppressed++
		return false, 0
	}
	suppressed, k.suppressed, k.last = k.suppressed, 0, now
	return true, suppressed
}

// prune forgets kinds not seen for a while with nothing to report.
func (l *logThrottle) prune(now time.Time) {
	for kind, k := range l.kinds {
		if k.suppressed == 0 && now.Sub(k.last) > 10*l.every {
			delete(l.kinds, kind)
		}
	}
}

// logKind is text with every run of digits replaced by '#'.
func logKind(text string) string {
	b := make([]byte, 0, len(text))
	digit := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= '0' && c <= '9' {
			if !digit {
				b = append(b, '#')
			}
			digit = true
			continue
		}
		digit = false
		b = append(b, c)
	}
	return string(b)
}
