package actors

import (
	"context"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// What the actors stand on, as interfaces of the package that uses them.
// Package actorstest has fakes of each with failure injection.

// PartitionData is one opened account partition. *storage.Partition
// satisfies it.
type PartitionData interface {
	ID() int
	Close() error
	CreateAccount(ctx context.Context, a storage.Account) error
	Account(addr string) (storage.Account, error)
	UpdateAccount(ctx context.Context, a storage.Account) error
	DeleteAccount(ctx context.Context, addr string) error
	Accounts() ([]storage.Account, error)
	SetAlias(ctx context.Context, alias, account string) error
	DeleteAlias(ctx context.Context, alias string) error
	// Aliases are the partition's aliases, alias -> target.
	Aliases() (map[string]string, error)
	Resolve(addr string) (string, error)
	// AppendAsync returns once the message is written; durable says when
	// it is synced (nil: nothing to wait for, a duplicate or a refusal).
	// See storage.AppendRequest for Discard, Pending and AutoReplied.
	AppendAsync(ctx context.Context, account string, req storage.AppendRequest) (storage.AppendResult, <-chan error, error)
	// DonePending marks kinds of the work recorded with an append as
	// done; a repeated append returns only what is left.
	DonePending(account, dedupKey string, done []string) <-chan error
	// HasAutoReplied reports whether account sent sender an RFC 3834
	// auto-reply that is still remembered.
	HasAutoReplied(account, sender string) (bool, error)
	Messages(account, folder string) ([]storage.MessageInfo, error)
	Raw(account, id string) ([]byte, error)
	// Body is message id as a mail.Body (a file's reader checks the
	// bytes as it reads them; see storage.Partition.Body).
	Body(account, id string) (mail.Body, error)
	// Delivered reports whether an append with dedupKey was stored (or
	// discarded, id "") and left no work pending: a repeated delivery
	// needs nothing, not even the body.
	Delivered(account, dedupKey string) (id string, ok bool, err error)
	// NewBody is a writer for a body to append (fetched or copied);
	// Linkable says whether a body in a file can be linked in instead.
	NewBody() (mail.BodyWriter, error)
	Linkable(b mail.Body) bool
	Usage(account string) (bytes int64, count int, err error)
	// Failed is closed once the data has failed: a write or sync error,
	// or another node took the partition since this open (a newer
	// epoch, storage.ErrFenced). Every write fails from then on; the
	// partition actor closes the data at once and opens it again. Err
	// says why (nil while healthy); Epoch is this open's fencing token.
	Failed() <-chan struct{}
	Err() error
	Epoch() uint64
}

// OpenPartition opens the data of partition id. It fails (with an error
// wrapping storage.ErrLocked) while another process holds it, and with one
// wrapping storage.ErrLockFailed when the lock cannot be taken at all.
type OpenPartition func(id int) (PartitionData, error)

// QueueStore is the durable queue. *storage.QueueStore satisfies it.
type QueueStore interface {
	// Put stores a new message and returns once it is durable.
	Put(ctx context.Context, msg *mail.Message) error
	// PutTransfer is Put for a message handed over by another member:
	// it stores nothing and reports duplicate when that id was handed
	// over before.
	PutTransfer(ctx context.Context, msg *mail.Message) (duplicate bool, err error)
	Update(env *mail.Envelope) <-chan error
	Delete(id string) <-chan error
	Envelope(id string) (*mail.Envelope, error)
	Body(id string) (mail.Body, error)
	Each(fn func(*mail.Envelope) error) error
	// GiveTransfer records this node's decision that the message id,
	// which it generated and handed over, goes on at member, and deletes
	// its own copy, in one batch (transfer.go). KeepTransfer records the
	// decision that it is processed here. Each is written once per id
	// and remembered for storage.TransferRetention; TransferOutcome
	// reads it (the zero value: no decision).
	GiveTransfer(id, member string) <-chan error
	KeepTransfer(id string) <-chan error
	TransferOutcome(id string) (storage.TransferOutcome, error)
}

// Transferer hands a message generated here to a member whose queue mode
// is Locally for Others (queue mode Remotely). *transfer.Client satisfies
// it.
type Transferer interface {
	// Targets lists the live members that take transfers now, starting
	// at a different one each call.
	Targets() []string
	// TransferTo hands msg to member and returns nil once the member
	// has it durably (its 250). An error whose TransferUnclear method
	// reports true (smtp.TransferError) means the whole message was sent
	// and no reply was read: the member may hold a copy. Any other
	// error means it holds none from this attempt.
	TransferTo(ctx context.Context, member string, msg *mail.Message) error
}

// TransferPeers puts the questions of the transfer protocol
// (transfer.go) to another member's "transfers" actor over the cluster
// channel. *ChannelPeers satisfies it; nil on a single node.
type TransferPeers interface {
	AskTransfer(ctx context.Context, member string, q TransferQuestion) (TransferVerdict, error)
}

// Relayer sends one SMTP transaction to the MX of one domain: the attempt
// msg, whose recipients are all in that domain. *smtp.Client satisfies it.
// Send returns one result per recipient, each naming the recipient's Key,
// and never blocks past ctx.
type Relayer interface {
	Send(ctx context.Context, msg *mail.Message) []mail.Result
}

// ContentPipeline runs the server-wide and cluster-wide rules, and the
// external filters they name, on a message entering this node's queue
// (design.md: "rules run in the Enqueuer of the node whose queue takes the
// message"). It may change msg's recipients and body (added header fields);
// discard means the message is accepted and dropped; an error carrying a
// *mail.Error refuses it with that reply, any other error is temporary.
// Safe for concurrent use. *content.Pipeline satisfies it.
type ContentPipeline interface {
	Process(ctx context.Context, msg *mail.Message) (discard bool, err error)
}

// Submitter takes mail generated on this node (a rule's forward, redirect
// or auto-reply, a DSN, a user's submission) and queues it by the node's
// queue processing mode. Submit returns once the message is durable, which
// may take a sync round and the rules and filters of the Enqueuer: actors
// never call it from Receive, only from a goroutine that reports back.
// *System satisfies it.
type Submitter interface {
	Submit(ctx context.Context, msg *mail.Message) error
}

// MailboxData is the folder model of an opened partition (storage's
// folder.go): what IMAP, POP3 and the admin API change through the account
// actor. *storage.Partition satisfies it; a PartitionData without it
// answers mailbox operations as unsupported. The write methods return once
// the change is written, with the channel that says when it is durable.
type MailboxData interface {
	Folders(account string) ([]storage.Folder, error)
	Folder(account, name string) (storage.Folder, error)
	CreateFolder(ctx context.Context, account, name, use string) (storage.Folder, <-chan error, error)
	DeleteFolder(ctx context.Context, account, name string) (<-chan error, error)
	RenameFolder(ctx context.Context, account, from, to string) (<-chan error, error)
	SubscribeFolder(ctx context.Context, account, name string, on bool) (<-chan error, error)
	FolderEntries(account string, fid uint32) ([]storage.Entry, error)
	StoreFlags(ctx context.Context, account string, fid uint32, uids []uint32, op storage.FlagOp, flags []string) ([]storage.Entry, <-chan error, error)
	Expunge(ctx context.Context, account string, fid uint32, uids []uint32) ([]uint32, <-chan error, error)
	Remove(ctx context.Context, account string, fid uint32, uids []uint32) ([]uint32, <-chan error, error)
	CopyMessages(ctx context.Context, account string, src uint32, uids []uint32, dst uint32, move bool, quota int64) (storage.CopyResult, <-chan error, error)
	MessageMeta(account string, ids []uint64, summaries bool) ([]storage.MessageMeta, error)
	MessageSummaries(account string, ids []uint64) ([][]byte, error)
	DeleteMessage(ctx context.Context, account, id string) error
	MoveMessage(ctx context.Context, account, id, folder string) (uint32, error)
	ChangeFlags(ctx context.Context, account, id string, add, remove []string, replace bool) error
}
