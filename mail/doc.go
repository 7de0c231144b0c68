// Package mail is the vocabulary every other Homing package shares: the
// envelope of a queued message (RFC 5321 §2.3.1 "mail object": reverse-path,
// forward-paths and the RFC 3461 DSN parameters that travel with them), the
// state of each recipient in the queue, and the rules for mailbox addresses
// (RFC 5321 §4.1.2).
//
// It holds value types and pure functions only: no I/O, no goroutines, and
// it imports none of Homing's packages, so smtp/, storage/, actors/ and
// cluster/ can all depend on it without depending on each other.
package mail
