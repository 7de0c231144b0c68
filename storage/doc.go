// Package storage is Homing's durable state on disk: the node-local message
// queue and the account mailboxes, both kept in badger v4 databases.
//
// # Durability
//
// RFC 5321 §6.1 makes a server that answers 250 to DATA responsible for the
// message: "the receiver-SMTP MUST NOT lose the message for frivolous
// reasons". Homing therefore acknowledges a write only once it is synced to
// disk. Every write of a DB goes through one committer goroutine that
// merges the batches waiting at that moment into one badger transaction, so
// concurrent SMTP sessions share one sync (group commit); see commit.go for
// why this must be done here rather than inside badger. Two ways make that
// transaction durable (Options.Syncer): by default every DB of a filesystem
// opens badger with SyncWrites=false and shares one Syncer, whose syncfs(2)
// round covers the writes of every DB at once (syncer.go); without a Syncer
// (--sync fsync, for network filesystems) badger opens with SyncWrites=true
// and syncs each merged transaction itself.
//
// # Fencing
//
// An open DB holds Homing's lock on its directory: an open file
// description lock on dir/homing.lock, taken read-write so that it also
// works on NFSv4, CephFS and GlusterFS, plus badger's own flock where the
// filesystem allows it, so that an older Homing is fenced during a rolling
// upgrade (lock.go). A second open of the same directory, from this process
// or any other, fails with ErrLocked until the holder closes or dies; a lock
// that cannot be taken at all is ErrLockFailed, not contention. Each open
// also increments the directory's epoch (epoch.go), and its committer checks
// in every round that the epoch is still its own: an open that another has
// superseded fails (ErrFenced) before its next commit reaches the disk. The
// cluster layer relies on this: only the node that opened a partition can
// write it.
//
// # Layout
//
// QueueStore is one DB per node (OpenQueue). AccountStore splits accounts
// into a fixed number of partitions (mail.PartitionOf), each its own DB under
// root/p0000, root/p0001, ..., so one partition can move between nodes. The
// key layout of each store is described in keys.go.
//
// # Damage
//
// Every stored body carries its length and CRC-32C (frame.go), and a read
// that does not match is ErrDamaged, never empty data; badger's files are
// inspected before badger.Open so that damage it would panic on in a
// goroutine of its own is an error (inspect.go); CheckQueue and
// CheckAccountStore verify a store offline and repair what they can
// (check.go, `homing check`).
//
// # Free space
//
// A full disk is an error, never a crash: a Space (Options.Space, one per
// filesystem) refuses new mail below --min-free-space (Admit), keeps the
// stores' writes above what badger needs for its own (the floor), and
// keeps a reserve file to give back when the disk fills up anyway
// (space.go); every transaction's pages in badger's mapped value log and
// WAL are allocated before badger writes them (prealloc.go), so that no
// write can meet a full disk as SIGBUS. Refusals wrap ErrNoSpace, which
// is temporary and, unlike ErrFailed, not sticky.
//
// Passwords are hashed with argon2id (RFC 9106) in the PHC string format;
// bcrypt hashes are accepted for verification (password.go).
package storage
