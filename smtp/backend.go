package smtp

import (
	"context"

	"github.com/homing-mail/homing/mail"
)

// Directory answers RCPT-time questions about addresses.
//
// Implementations must be safe for concurrent use by many sessions.
type Directory interface {
	// IsLocalDomain reports whether mail for domain (lower-case) is
	// delivered to accounts of this cluster.
	IsLocalDomain(domain string) bool
	// Resolve returns the account that addr (a normalised address in a
	// local domain) delivers to, following aliases. It returns an error
	// wrapping mail.ErrNoSuchUser when there is no such account or alias
	// (the session answers 550 5.1.1), mail.ErrDisabled when the account
	// is disabled (550 5.2.1); any other error means the directory cannot
	// answer now (the session answers 451 4.4.3).
	Resolve(ctx context.Context, addr string) (account string, err error)
}

// Enqueuer takes accepted messages.
type Enqueuer interface {
	// Enqueue stores msg durably. It returns nil only once the message
	// and its whole envelope are synced to disk: the session replies 250
	// after that and only after that (RFC 5321 §6.1). The envelope's ID
	// may be set on entry (the session names the queue id in the
	// Received header before it enqueues) and Enqueue keeps it; an empty
	// ID is set by Enqueue. The caller does not use msg after Enqueue
	// returns, and Enqueue may keep it.
	// An error carrying a *mail.Error (a rule's or a filter's refusal)
	// is sent with its code, status and reason; any other error is the
	// generic temporary failure (451 4.3.0).
	Enqueue(ctx context.Context, msg *mail.Message) error
}

// Authenticator checks the credentials of a user of the submission
// listener (AUTH PLAIN and LOGIN, RFC 4954).
type Authenticator interface {
	// Authenticate returns the canonical account address for the user,
	// or an error wrapping mail.ErrAuthFailed for wrong credentials; any
	// other error is temporary (454 4.7.0).
	Authenticate(ctx context.Context, username, password string) (account string, err error)
}

// Admitter is implemented by an Enqueuer whose store can be short of
// space (actors.Enqueuer over the queue store): Admit(size) returns nil,
// or an error wrapping mail.ErrNoSpace while the store's filesystem is
// below its free-space limit (size: the message's size when known, 0
// otherwise). The session asks at MAIL FROM (with the SIZE parameter)
// and at DATA, and answers 452 4.3.1 (Postfix's queue_minfree).
type Admitter interface {
	Admit(size int64) error
}
