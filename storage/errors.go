package storage

import (
	"fmt"

	"github.com/homing-mail/homing/mail"
)

// Errors returned by this package. Test for them with errors.Is; most are
// wrapped with the directory, key or address they concern. Each answers
// Temporary (mail.IsTemporary): a lock held elsewhere, a closed or failed
// DB and a full mailbox may go away; bad keys, ids, addresses and values
// never do.
var (
	// ErrLocked: the database directory is held by another open, in this
	// process or another one (lock.go). Homing's lock file is the fence
	// that keeps two nodes from owning one partition.
	ErrLocked = mail.TemporaryError("storage: database is locked by another open")
	// ErrLockFailed: the directory's lock could not be taken for a reason
	// other than another open holding it (EBADF, ENOLCK, EIO ...: a
	// filesystem whose locks do not work). It is not contention: the
	// caller reports it and retries slowly.
	ErrLockFailed = mail.TemporaryError("storage: the directory lock cannot be taken")
	// ErrFenced: the directory's epoch (epoch.go) is no longer the one this
	// open wrote: another open took the directory after this one lost its
	// lock. The DB fails (ErrFailed) and writes nothing more.
	ErrFenced = mail.TemporaryError("storage: the directory was opened elsewhere since (a newer epoch)")
	// ErrClosed: the DB, store or partition has been closed.
	ErrClosed = mail.TemporaryError("storage: closed")
	// ErrBatchTooBig: one batch does not fit in a single badger
	// transaction (see DB.Submit). It is never a merge of several batches.
	ErrBatchTooBig = mail.PermanentError("storage: batch too big for one transaction")
	// ErrInvalidKey: a key is empty, too long or in badger's reserved
	// "!badger!" namespace.
	ErrInvalidKey = mail.PermanentError("storage: invalid key")
	// ErrValueTooBig: a value is larger than MaxValueBytes.
	ErrValueTooBig = mail.PermanentError("storage: value too big")
	// ErrFailed: an earlier commit failed with an I/O error. After a failed
	// sync the kernel may have dropped dirty pages while reporting later
	// syncs as successful, so the DB refuses all further writes until it is
	// closed and opened again (the error returned wraps both this and the
	// original cause).
	ErrFailed = mail.TemporaryError("storage: database failed")
	// ErrInvalidAddress: an account or alias address is not usable as a
	// key (empty, no '@', control characters, longer than 320 bytes).
	ErrInvalidAddress = mail.PermanentError("storage: invalid address")
	// ErrInvalidID: a queue id is empty, too long or contains '/' or
	// control characters.
	ErrInvalidID = mail.PermanentError("storage: invalid id")
	// ErrInvalidMessage: an append that can never succeed as asked (an
	// empty message, Discard or Pending without a DedupKey).
	ErrInvalidMessage = mail.PermanentError("storage: invalid message")
	// ErrOverQuota: an Append would take the mailbox over
	// AppendRequest.QuotaBytes (checked after the dedup lookup, so a
	// repeated delivery of a stored message is still a duplicate).
	ErrOverQuota = mail.TemporaryError("storage: mailbox over quota")
	// ErrDamaged: stored data is not what was written: a body whose frame
	// does not check (wrong length or CRC-32C, an empty value where a body
	// must be; see frame.go), a record that does not decode, or a
	// database whose files badger cannot open (a truncated table, an
	// emptied KEYREGISTRY, a missing MANIFEST; see inspect.go). It is
	// permanent: reading again returns the same bytes. `homing check`
	// finds such data and --repair isolates it.
	ErrDamaged = mail.PermanentError("storage: data damaged")
	// ErrBodyDamaged (also ErrDamaged): the body an append was given
	// failed its check while the store read it (a body file whose bytes
	// differ from its length or CRC-32C). Nothing was stored; the
	// holder of the message (the queue) keeps it as damaged.
	ErrBodyDamaged = fmt.Errorf("%w: the message's body", ErrDamaged)
	// ErrNoSpace (mail.ErrNoSpace): a store's filesystem is below its
	// free-space limit, or too full for the write (space.go). It is
	// temporary and, unlike ErrFailed, not sticky: nothing was written,
	// and the write works again once space is freed.
	ErrNoSpace = mail.ErrNoSpace
	// ErrNoFolder: an account has no folder of that name (IMAP's
	// NONEXISTENT and TRYCREATE, RFC 5530); it is also mail.ErrNotFound.
	ErrNoFolder = mail.PermanentError("storage: no such folder")
	// ErrUseNotSupported: a special use that is not one of SpecialUses
	// (RFC 6154 §5.1 USEATTR).
	ErrUseNotSupported = mail.PermanentError("storage: special use not supported")
	// ErrCannot: deleting INBOX, or renaming a folder onto one that
	// exists or under itself (IMAP's CANNOT, RFC 5530).
	ErrCannot = mail.PermanentError("storage: not possible with this folder")
)

// WrongPartitionError is returned when an address is used in a partition it
// does not hash into (mail.PartitionOf). Storing it there would make it
// unreachable, so the call is refused.
type WrongPartitionError struct {
	Address   string
	Partition int // the partition that was asked
	Want      int // mail.PartitionOf(Address, partitions)
}

// Temporary is false: the address will never belong to this partition.
func (e *WrongPartitionError) Temporary() bool { return false }

func (e *WrongPartitionError) Error() string {
	return fmt.Sprintf("storage: address %q belongs to partition %d, not %d", e.Address, e.Want, e.Partition)
}

// PartitionCountError is returned by NewAccountStore when root was created
// with a different number of partitions. Changing the count would move
// almost every account to another partition, so it is refused.
type PartitionCountError struct {
	Root     string
	Recorded int // the count in root/store.json
	Asked    int // the count passed to NewAccountStore
}

// Temporary is false: the store's partition count never changes.
func (e *PartitionCountError) Temporary() bool { return false }

func (e *PartitionCountError) Error() string {
	return fmt.Sprintf("storage: account store %s has %d partitions, not %d (the count cannot change)",
		e.Root, e.Recorded, e.Asked)
}
