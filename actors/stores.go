package actors

import (
	"context"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// PartitionData is one opened account partition. *storage.Partition
// satisfies it; tests substitute fakes that fail on demand.
type PartitionData interface {
	ID() int
	Close() error
	CreateAccount(ctx context.Context, a storage.Account) error
	Account(addr string) (storage.Account, error)
	DeleteAccount(ctx context.Context, addr string) error
	Accounts() ([]storage.Account, error)
	SetAlias(ctx context.Context, alias, account string) error
	DeleteAlias(ctx context.Context, alias string) error
	Resolve(addr string) (string, error)
	Append(ctx context.Context, account string, req storage.AppendRequest) (storage.AppendResult, error)
	// AppendAsync returns once the message is written; durable says when
	// it is synced (nil: nothing to wait for).
	AppendAsync(ctx context.Context, account string, req storage.AppendRequest) (storage.AppendResult, <-chan error, error)
	Messages(account, folder string) ([]storage.MessageInfo, error)
	Raw(account, id string) ([]byte, error)
	Usage(account string) (bytes int64, count int, err error)
	UpdateAccount(ctx context.Context, a storage.Account) error
	// AutoReplied records an RFC 3834 auto-reply from account to sender
	// (kept for ttl) and reports whether one was recorded already.
	AutoReplied(ctx context.Context, account, sender string, ttl time.Duration) (already bool, err error)
}

// OpenPartition opens the data of partition id. It fails (with an error
// wrapping storage.ErrLocked) while another process holds it.
type OpenPartition func(id int) (PartitionData, error)

// QueueStore is the durable queue. *storage.QueueStore satisfies it.
type QueueStore interface {
	Put(ctx context.Context, env *mail.Envelope, body []byte) error
	// PutTransfer is Put for a message handed over by another member:
	// it stores nothing and reports duplicate when that id was handed
	// over before.
	PutTransfer(ctx context.Context, env *mail.Envelope, body []byte) (duplicate bool, err error)
	Update(env *mail.Envelope) <-chan error
	Delete(id string) <-chan error
	Envelope(id string) (*mail.Envelope, error)
	Body(id string) ([]byte, error)
	Each(fn func(*mail.Envelope) error) error
}

// Transferer hands a message generated here to a member whose queue mode
// is Locally for Others (queue mode Remotely). It returns the member that
// took it, or an error when none did (no such member alive, connection,
// authentication, transfer or reply failure, timeout): the message is then
// processed here. *node's transferer satisfies it.
type Transferer interface {
	Transfer(ctx context.Context, env *mail.Envelope, body []byte) (member string, err error)
}

// Relayer sends one SMTP transaction to the MX of one domain.
// *smtp.Client satisfies it. Send returns one result per recipient, in
// order, and never blocks past ctx.
type Relayer interface {
	Send(ctx context.Context, env *mail.Envelope, rcpts []*mail.Recipient, body []byte) []mail.Result
}

// ContentPipeline runs the server-wide and cluster-wide rules, and the
// external filters they name, on a message entering this node's queue
// (design.md: "rules run in the Enqueuer of the node whose queue takes the
// message"). It may change the recipients and the body (added header
// fields); discard means the message is accepted and dropped; an error
// wrapping *mail.RejectError refuses it with that reply, any other error
// is temporary. Safe for concurrent use.
type ContentPipeline interface {
	Process(ctx context.Context, env *mail.Envelope, body []byte) (out []byte, discard bool, err error)
}
