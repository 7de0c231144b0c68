// Package actors holds the actors that do Homing's mail work, on
// protoactor-go's actor package (local actors; the cluster channel that lets
// them talk across nodes lives in package cluster).
//
// One value travels the whole way: a *mail.Message (envelope and body
// reference). The Enqueuer takes it from SMTP, the API or a generated
// report; the queue keeps it; every attempt is a Message holding only the
// recipients attempted (Message.For), and every answer is a mail.Result
// per recipient naming its mail.Recipient.Key. Conversions to the protobuf
// messages that cross nodes are in wire.go.
//
// Backend side:
//   - a partition actor per account partition this node owns: it opens the
//     partition's data (the storage layer fences it: only one process can
//     hold it), answers directory questions (does this address exist, which
//     account does an alias name) and activates account actors;
//   - an account actor per active account: a virtual actor, activated by the
//     first message for the account and passivated after an idle time. It is
//     the only writer of its mailbox, so every Local Delivery for one account
//     is serialised through it. A delivery is a transaction (account.go):
//     rules, then the append as the commit (idempotent on the queue id and
//     the recipient), and only then the messages the rules generate.
//
// Queue side (RFC 5321 §4.5.4 retry strategy, RFC 3464 reports):
//   - the queue actor keeps the in-memory view of the durable queue, decides
//     what to attempt, records each answer by the queue policy (policy.go, a
//     pure function) and asks for reports (report.go); transfers in queue
//     mode Remotely are in transfer.go, the administrator's operations in
//     queueadmin.go;
//   - the local delivery actor hands local recipients to their partition's
//     actor (wherever it lives), one Deliver per account, and collects the
//     answers;
//   - one relay actor per destination domain sends remote recipients with
//     a per-domain concurrency limit;
//   - the scheduler wakes the queue when a deferred message is due;
//   - the DSN writer composes delivery status notifications and submits them
//     before the queue forgets the message they report on.
//
// On the mail path no actor waits on the network, on rules or filters, or
// on a sync inside Receive: an SMTP transaction, a transfer, a submission
// (Submitter) or the wait for an append's sync round runs on a goroutine
// that reports back with a message; what the queue and account actors do
// on disk in Receive is a read, or a write handed to the group commit of
// package storage without waiting for its sync. (The administrator's
// account operations in the partition actor — create, delete, rules — do
// wait for their own commit: they are rare and the API waits for them.)
package actors
