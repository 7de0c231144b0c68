package mail

import "errors"

// Errors that cross package boundaries. Callers test them with errors.Is.
var (
	// ErrNoSuchUser: the address is in a local domain but no account or
	// alias has it (RFC 5321 550 5.1.1).
	ErrNoSuchUser = errors.New("no such user")
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: the thing to be created exists already.
	ErrExists = errors.New("already exists")
)

// ErrAuthFailed: the credentials are wrong (RFC 4954 535 5.7.8).
var ErrAuthFailed = errors.New("authentication failed")

// RejectError is a refusal that must reach the SMTP client with its own
// code: a rule's reject action, for example. Code is 4xx or 5xx.
type RejectError struct {
	Code   int
	Status string // RFC 3463, e.g. "5.7.1"
	Text   string
}

func (e *RejectError) Error() string { return e.Text }
