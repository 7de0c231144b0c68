package guard

import (
	"strconv"
	"time"

	"github.com/homing-mail/homing/mail"
)

// The reasons an attempt is refused before it is checked. Both are
// temporary: the client may try again after Refusal.RetryAfter.
var (
	// ErrThrottled: the client's network, or the account from that
	// network, has used up its failures for now (SMTP 454 4.7.0, HTTP 429).
	ErrThrottled = mail.TemporaryError("too many failed attempts, try again later")
	// ErrBusy: every slot of the gate stayed taken during the wait (SMTP
	// 454 4.7.0, HTTP 503).
	ErrBusy = mail.TemporaryError("too many checks in progress, try again later")
)

// Refusal is the error of a refused attempt: Err is ErrThrottled or
// ErrBusy (test with errors.Is), RetryAfter when trying again may work.
type Refusal struct {
	Err        error
	RetryAfter time.Duration
}

func (r *Refusal) Error() string {
	return r.Err.Error() + " (retry after " + strconv.Itoa(r.RetryAfterSeconds()) + " s)"
}

// Unwrap returns Err.
func (r *Refusal) Unwrap() error { return r.Err }

// Temporary is true: a refusal ends.
func (r *Refusal) Temporary() bool { return true }

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least 1
// (for an HTTP Retry-After header).
func (r *Refusal) RetryAfterSeconds() int {
	s := int((r.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}
