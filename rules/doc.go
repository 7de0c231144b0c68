// Package rules is Homing's mail-rule model and its evaluation: what an
// administrator or a user writes ("mail from this sender with this subject:
// reject it", "file it into that folder", "answer it while I am away"), and
// the pure function that says what a rule set does to one message.
//
// Three scopes run the same model (Scope): server-wide and cluster-wide
// rules run in the Enqueuer of the node whose queue takes a message; account
// rules run in the account actor at delivery. The scope decides which
// actions a rule may use (Rule.Validate).
//
// The package does no I/O and starts no goroutines. Compile checks a rule set
// once and returns a Set that is immutable and safe for concurrent use;
// Evaluate is the one-call form for rules that were not compiled.
//
// Standards it follows:
//   - RFC 5322 §2.2 and §2.2.3: header fields and their unfolding
//     (ParseHeader); §2.1.1 line length limits for the lines it writes.
//   - RFC 2047: encoded words in header fields are decoded before conditions
//     compare them.
//   - RFC 5321 §4.2 and RFC 3463: the reply code and enhanced status code of
//     a reject action.
//   - RFC 5321 §4.1.2 (through mail.ParseAddress): the addresses of redirect
//     and forward actions.
//   - RFC 3834: when to send an automatic response (ShouldAutoReply,
//     AddressedTo) and what it looks like (AutoReplyMessage); RFC 2369 and
//     RFC 2919 for the List-* fields that mark list mail; RFC 5230 §4.1 for
//     the default vacation interval.
package rules
