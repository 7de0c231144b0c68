// Package imap serves IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) on
// go-imap v2's imapserver, with the mailbox of every account reached
// through its owner's account actor (Backend: pb.MailboxOp over the
// cluster channel, so a session on any node serves any account while only
// the owner opens it).
//
// What imapserver does not do, this package does in front of it
// (wire.go): STARTTLS (RFC 9051 §6.2.1), so that the capabilities and
// LOGINDISABLED follow the connection's own state; ID (RFC 2971); and
// QUOTA (RFC 9208). The session (session.go) keeps, for the selected
// folder, the client's view: the UIDs in sequence order and the updates it
// has not told the client yet; the owner's notices (pb.MailboxChanged)
// make it ask what changed since its MODSEQ, and it answers EXISTS,
// EXPUNGE and FETCH FLAGS at the next command or during IDLE.
package imap
