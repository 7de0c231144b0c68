package imap

import (
	"context"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/actors/pb"
)

// Backend is what a session stands on: the accounts and their mailboxes,
// wherever their owner runs. *actors.System satisfies it.
type Backend interface {
	// Authenticate checks a password and returns the account's address
	// (mail.ErrAuthFailed when it does not match).
	Authenticate(ctx context.Context, user, password string) (string, error)
	// Mailbox runs a mailbox operation at the account's owner.
	Mailbox(ctx context.Context, op *pb.MailboxOp) (*pb.MailboxReply, error)
	// ReadMessage reads a piece (at most 256 KiB) of a stored message.
	ReadMessage(ctx context.Context, account, id string, off int64, length int) ([]byte, int64, error)
	// MailboxOwner names the owner of the account's partition now.
	MailboxOwner(account string) string
	// NewWatcher starts an actor of this node that receives notices.
	NewWatcher(fn func(*pb.MailboxChanged)) (*actors.Watcher, error)
}

var _ Backend = (*actors.System)(nil)
