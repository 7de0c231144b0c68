package mail

import (
	"errors"
	"fmt"
	"strconv"
)

// The error taxonomy (after maddy's exterrors): every error that decides
// what happens to mail says whether it is temporary. Temporary means "try
// again later, it may work" (4xx, the message stays queued, the admin API
// answers 503); permanent means "this will never work as it is" (5xx, a
// bounce, 400/404). Two kinds of value carry it:
//
//   - *Error, a failure with its SMTP reply code, RFC 3463 status and a
//     reason safe to show a client, wrapping its cause for the logs;
//   - sentinels made with TemporaryError and PermanentError, which every
//     package uses for its Err... values, tested with errors.Is.
//
// IsTemporary answers for any error.

// Error is a mail failure as it reaches an SMTP client, a DSN or the queue:
// Code is the SMTP reply code (4xx temporary, 5xx permanent), Status its
// RFC 3463 enhanced code, Reason the text for people (generic where internal
// details must not leak) and Err the cause, for logs and errors.Is.
type Error struct {
	Code   int
	Status Status
	Reason string
	Err    error
}

// Error is "451 4.3.0 reason: cause".
func (e *Error) Error() string {
	s := strconv.Itoa(e.Code)
	if e.Status != "" {
		s += " " + string(e.Status)
	}
	if e.Reason != "" {
		s += " " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the failure may go away (a 4xx code).
func (e *Error) Temporary() bool { return e.Code/100 == 4 }

// Result is the failure as the answer for one recipient.
func (e *Error) Result() Result {
	return Result{Code: e.Code, Status: e.Status.ForCode(e.Code), Text: e.Reason}
}

// Temporaryf is an *Error with code 451 and status, its reason formatted.
func Temporaryf(status Status, format string, a ...any) *Error {
	return &Error{Code: 451, Status: status, Reason: fmt.Sprintf(format, a...)}
}

// Permanentf is an *Error with code 550 and status, its reason formatted.
func Permanentf(status Status, format string, a ...any) *Error {
	return &Error{Code: 550, Status: status, Reason: fmt.Sprintf(format, a...)}
}

// sentinel is an error value that knows whether it is temporary.
type sentinel struct {
	text      string
	temporary bool
}

func (s *sentinel) Error() string   { return s.text }
func (s *sentinel) Temporary() bool { return s.temporary }

// TemporaryError returns a new sentinel error whose Temporary method
// answers true. Each call returns a distinct value for errors.Is.
func TemporaryError(text string) error { return &sentinel{text: text, temporary: true} }

// PermanentError returns a new sentinel error whose Temporary method
// answers false.
func PermanentError(text string) error { return &sentinel{text: text} }

// IsTemporary reports whether err may go away if tried again: the answer of
// the first error in its chain that has a Temporary method (every *Error,
// every sentinel of Homing's packages, net and context timeouts). An error
// that says nothing is taken as temporary: a failure Homing does not
// understand is its own and must never bounce mail. nil is not temporary.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var t interface{ Temporary() bool }
	if errors.As(err, &t) {
		return t.Temporary()
	}
	return true
}

// AsError returns the *Error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Errors that cross package boundaries. Callers test them with errors.Is.
var (
	// ErrNoSuchUser: the address is in a local domain but no account or
	// alias has it (RFC 5321 550 5.1.1).
	ErrNoSuchUser = PermanentError("no such user")
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = PermanentError("not found")
	// ErrExists: the thing to be created exists already.
	ErrExists = PermanentError("already exists")
	// ErrInvalid: the request can never succeed as it is (bad input).
	ErrInvalid = PermanentError("invalid request")
	// ErrAuthFailed: the credentials are wrong (RFC 4954 535 5.7.8).
	ErrAuthFailed = PermanentError("authentication failed")
	// ErrDisabled: the account exists but the administrator disabled it:
	// it takes no mail (RFC 3463 550 5.2.1) and no logins.
	ErrDisabled = PermanentError("account disabled")
	// ErrUnavailable: whoever must answer cannot now: a partition with no
	// owner or in a handoff, an owner that did not answer in time, a disk
	// that failed. Try again later.
	ErrUnavailable = TemporaryError("temporarily unavailable")
	// ErrNoSpace: a store's filesystem is below its free-space limit, or
	// full: nothing new is written until space is freed (RFC 3463 4.3.1
	// "mail system full", answered 452 in SMTP, 507 by the admin API).
	ErrNoSpace = TemporaryError("insufficient system storage")
)
