// Package actors holds the actors that do Homing's mail work, on
// protoactor-go's actor package (local actors; the cluster channel that lets
// them talk across nodes lives in package cluster).
//
// Backend side:
//   - a partition actor per account partition this node owns: it opens the
//     partition's data (the storage layer fences it: only one process can
//     hold it), answers directory questions (does this address exist, which
//     account does an alias name) and activates account actors;
//   - an account actor per active account: a virtual actor, activated by the
//     first message for the account and passivated after an idle time. It is
//     the only writer of its mailbox, so every Local Delivery for one account
//     is serialised through it. Delivery is idempotent: the queue message id
//     and the recipient form the dedup key of the append.
//
// Queue side (RFC 5321 §4.5.4 retry strategy, RFC 3464 reports):
//   - the queue actor keeps the in-memory view of the durable queue, decides
//     what to attempt, records per-recipient results and asks for reports;
//   - the local delivery actor hands local recipients to their partition's
//     actor (wherever it lives) and collects the answers;
//   - one relay actor per destination domain sends remote recipients with
//     a per-domain concurrency limit;
//   - the scheduler wakes the queue when a deferred message is due;
//   - the DSN writer composes delivery status notifications and enqueues them
//     before the queue forgets the message they report on.
//
// No actor blocks on the network. Actors that must wait on disk (an append,
// a queue write) wait on the group commit of package storage, which batches
// the syncs of all concurrent writers.
package actors
