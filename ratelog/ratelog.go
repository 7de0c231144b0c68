// Package ratelog keeps a log from growing with what an attacker sends:
// records of one kind are written at most once per interval, and the next
// one written carries how many were dropped since (suppressed=N). A kind is
// the record's level and message with every run of digits masked
// (addresses, ports and counts differ between repetitions of one error).
// It imports nothing of Homing.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Throttle decides which records of each kind may be written. The kinds it
// remembers are bounded; beyond that, new kinds share one. Safe for
// concurrent use.
type Throttle struct {
	every time.Duration
	burst int // records of a kind let through per interval
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*kind
}

type kind struct {
	last       time.Time // when the interval of the kind began
	passed     int       // records let through in that interval
	suppressed int       // records dropped since the last one let through
}

// MaxKinds bounds the kinds a Throttle remembers.
const MaxKinds = 256

// overflow is the kind of every record once MaxKinds-1 are known.
const overflow = "\x00other"

// NewThrottle lets through one record per kind every interval; now is the
// clock (nil: time.Now).
func NewThrottle(every time.Duration, now func() time.Time) *Throttle {
	return NewBurstThrottle(1, every, now)
}

// NewBurstThrottle lets through up to burst records per kind every
// interval (at least one), for lines that are each worth reading in
// ordinary times (the delivery log's rejections) but that a flood must
// not multiply.
func NewBurstThrottle(burst int, every time.Duration, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{every: every, burst: max(burst, 1), now: now, kinds: map[string]*kind{}}
}

// Allow reports whether a record of the kind of text may be written now,
// and how many of its kind were dropped since the last one written (to be
// written with it).
func (t *Throttle) Allow(text string) (ok bool, suppressed int) {
	name := Kind(text)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.kinds[name]
	if k == nil {
		if len(t.kinds) >= MaxKinds-1 { // one place stays for overflow
			t.prune(now)
		}
		if len(t.kinds) >= MaxKinds-1 {
			name = overflow
			k = t.kinds[name]
		}
		if k == nil {
			t.kinds[name] = &kind{last: now, passed: 1}
			return true, 0
		}
	}
	if now.Sub(k.last) >= t.every {
		k.last, k.passed = now, 0
	}
	if k.passed >= t.burst {
		k.suppressed++
		return false, 0
	}
	k.passed++
	suppressed, k.suppressed = k.suppressed, 0
	return true, suppressed
}

// Kinds is how many kinds t remembers.
func (t *Throttle) Kinds() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.kinds)
}

// prune forgets kinds not seen for a while with nothing to report.
func (t *Throttle) prune(now time.Time) {
	for name, k := range t.kinds {
		if k.suppressed == 0 && now.Sub(k.last) > 10*t.every {
			delete(t.kinds, name)
		}
	}
}

// Kind is text with every run of digits replaced by '#'.
func Kind(text string) string {
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

// Handler is a slog.Handler that writes through next at most one record
// per kind (level and message) per interval, adding suppressed=N to the
// record written after N were dropped. Use it for the logger of the lines
// others can cause at will (refused connections, failed logins); keep the
// ordinary logger for the rest.
type Handler struct {
	next slog.Handler
	t    *Throttle
}

// New wraps next; records of one kind pass once every interval.
func New(next slog.Handler, every time.Duration) *Handler {
	return &Handler{next: next, t: NewThrottle(every, nil)}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	ok, suppressed := h.t.Allow(r.Level.String() + " " + r.Message)
	if !ok {
		return nil
	}
	if suppressed > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", suppressed))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler; the copy shares the throttle.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), t: h.t}
}

// WithGroup implements slog.Handler; the copy shares the throttle.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), t: h.t}
}
