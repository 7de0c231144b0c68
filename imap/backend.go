package imap

import (
	"context"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
)

// Backend is what a session stands on: the accounts and their mailboxes,
// wherever their owner runs. SystemBackend adapts *actors.System.
type Backend interface {
	// Authenticate checks a password and returns the account's address
	// (mail.ErrAuthFailed when it does not match).
	Authenticate(ctx context.Context, user, password string) (string, error)
	// Mailbox runs a mailbox operation at the account's owner.
	Mailbox(ctx context.Context, op *pb.MailboxOp) (*pb.MailboxReply, error)
	// NewBody returns a writer for an appended message on this node: it
	// keeps a small one in memory and writes a large one to a file, never
	// holding it whole.
	NewBody() (mail.BodyWriter, error)
	// AppendMessage runs APPEND op with its body (from NewBody) at the
	// account's owner and returns once the message is durable there; the
	// body is discarded after.
	AppendMessage(ctx context.Context, op *pb.MailboxOp, body mail.Body) (*pb.MailboxReply, error)
	// ReadMessage reads a piece (at most 256 KiB) of a stored message;
	// with check, the owner checks the whole message before a piece at
	// offset 0 (BODY[]), without it reads only the piece (a section).
	ReadMessage(ctx context.Context, account, id string, off int64, length int, check bool) ([]byte, int64, error)
	// MailboxOwner names the owner of the account's partition now.
	MailboxOwner(account string) string
	// NewWatcher starts a receiver of the owner's notices on this node.
	NewWatcher(fn func(*pb.MailboxChanged)) (Watcher, error)
}

// Watcher receives an account's notices; its address and id go into
// MailboxOp's watcher fields.
type Watcher interface {
	Addr() (address, id string)
	Stop()
}

// Admitter is implemented by a Backend whose node stages appended bodies
// on a store that can be short of space (SystemBackend): Admit(size)
// returns nil, or an error wrapping mail.ErrNoSpace while that store's
// filesystem is below its free-space limit. Append asks before it takes
// the literal and answers NO [UNAVAILABLE] (temporary); the owner's store
// checks its own disk again when it appends.
type Admitter interface {
	Admit(size int64) error
}

// SystemBackend is the Backend of a node's actors.
type SystemBackend struct{ *actors.System }

// NewWatcher implements Backend.
func (b SystemBackend) NewWatcher(fn func(*pb.MailboxChanged)) (Watcher, error) {
	w, err := b.System.NewWatcher(fn)
	if err != nil {
		return nil, err
	}
	return systemWatcher{w}, nil
}

type systemWatcher struct{ w *actors.Watcher }

func (s systemWatcher) Addr() (string, string) { return s.w.Address, s.w.ID }
func (s systemWatcher) Stop()                  { s.w.Stop() }

var (
	_ Backend  = SystemBackend{}
	_ Admitter = SystemBackend{}
)
