package pop3

import (
	"context"
	"io"
	"net/netip"

	"github.com/homing-mail/homing/mail"
)

// Backend is what the server needs from the node: password checks and the
// accounts' INBOXes. Implementations must be safe for concurrent use by
// many sessions.
type Backend interface {
	// Authenticate returns the canonical account address for username
	// when password is right, or an error wrapping mail.ErrAuthFailed
	// for wrong credentials (-ERR [AUTH]); any other error is a failure
	// to check (-ERR [SYS/TEMP]). The session calls it through the
	// guard, so it may be slow (a password hash).
	Authenticate(ctx context.Context, username, password string) (account string, err error)

	// Open takes the maildrop lock of account's INBOX for this session
	// and returns the maildrop (RFC 1939 §4: "the POP3 server then
	// acquires an exclusive-access lock on the maildrop"). While a
	// Maildrop of an account is open, Open of the same account returns an
	// error wrapping ErrInUse (-ERR [IN-USE], RFC 2449 §8.1), wherever
	// the other session runs: the lock is the backend's (in a cluster, the
	// account's owner holds it). Other errors are -ERR [SYS/TEMP] when
	// temporary (mail.IsTemporary), -ERR [SYS/PERM] otherwise. client is
	// the session's client address (invalid when not TCP), for the lock's
	// holder and the logs.
	Open(ctx context.Context, account string, client netip.Addr) (Maildrop, error)
}

// ErrInUse is Backend.Open's error when another session holds the
// account's maildrop lock. It is temporary: the lock is released when
// that session ends.
var ErrInUse = mail.TemporaryError("maildrop in use by another session")

// Maildrop is one session's view of an account's INBOX, from Open to
// Close. The session calls its methods from one goroutine, except Lost,
// which it watches from another.
type Maildrop interface {
	// List returns the messages of the INBOX when the session began, in
	// the order they are numbered (1, 2, ...). The session calls it once,
	// right after Open; the list does not change during the session
	// (messages delivered meanwhile are for the next one).
	List(ctx context.Context) ([]Message, error)

	// Open returns the message with id as a stream of its octets (the
	// RFC 5322 message; see the package doc on sizes and line ends). The
	// session reads it to the end, or as far as TOP needs, then closes
	// it. A read error ends the response and the session (the client has
	// part of a multi-line response and no terminator).
	Open(ctx context.Context, id string) (io.ReadCloser, error)

	// Delete removes the messages with ids (the ones marked with DELE) in
	// one operation and returns only when that is durable: the session
	// answers QUIT with +OK after that and only after that (RFC 1939 §6).
	// On an error some or all of them may remain; the session answers
	// -ERR and ends. It is called at most once, never with no ids.
	Delete(ctx context.Context, ids []string) error

	// Lost is closed when the maildrop is no longer this session's: the
	// account's owner changed, or the backend is shutting down. The
	// session then ends with -ERR [SYS/TEMP] after the command in progress
	// (a Delete in progress finishes and is answered by its result), and
	// deletes nothing further. nil: never lost.
	Lost() <-chan struct{}

	// Close releases the maildrop lock. The session calls it once, at
	// QUIT or when the connection ends for any reason.
	Close() error
}

// Message is one message in a Maildrop's list.
type Message struct {
	// ID names the message to Maildrop.Open and Delete, and is its unique
	// id for UIDL (RFC 1939 §7): the same message must have the same ID
	// in every session, and no other message of the mailbox may ever
	// have it. An ID that is not 1 to 70 octets of 0x21 to 0x7E is sent
	// as a stable hash of it (UniqueID).
	ID string
	// Size is the number of octets RETR sends (before dot-stuffing),
	// CRLF line ends counted as two (RFC 1939 §11).
	Size int64
}
