// Package pop3 is Homing's POP3 server: RFC 1939 (USER/PASS, STAT, LIST,
// RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL; no APOP), the extension
// mechanism and its response codes (CAPA, RFC 2449, with RESP-CODES,
// PIPELINING, UIDL, TOP, USER, SASL, IMPLEMENTATION; the AUTH response
// code of RFC 3206), STLS (RFC 2595 §4), AUTH PLAIN (RFC 5034 with
// RFC 4616's PLAIN) and implicit TLS for pop3s (RFC 8314 §3.3).
//
// It serves one folder, INBOX, of one account per session, through a small
// Backend (backend.go) that the node implements: Authenticate checks a
// password, Open takes the account's maildrop lock (a second concurrent
// session is refused with -ERR [IN-USE], RFC 2449 §8.1) and returns a
// Maildrop, which lists the messages, streams one, deletes the marked ones
// at QUIT (one call, durable before the +OK) and can end the session
// itself when the mailbox moves away (Maildrop.Lost). The package
// imports only mail and guard from Homing.
//
// # Rules the session keeps
//
//   - Passwords only over TLS or from loopback (RFC 2595 §2.4 and §4, RFC
//     8314 §3): elsewhere CAPA lists neither USER nor SASL PLAIN, and USER,
//     PASS and AUTH are answered -ERR [AUTH] until STLS.
//   - Every login goes through the node's guard (package guard): a failure
//     budget per client network and per account from a network, reserved
//     before the password is checked, a bounded number of checks at once,
//     a delay after each failure that grows with the recent ones; a refused
//     attempt is -ERR [SYS/TEMP] unchecked. The MaxAuthFailures-th failure
//     on a connection closes it.
//   - Bounded work before authentication: at most MaxCommandsBeforeAuth
//     commands and MaxErrorsBeforeAuth errors, then -ERR and the
//     connection is closed; a shorter timeout (LoginTimeout) than the idle
//     timeout after login (IdleTimeout, at least 10 minutes, RFC 1939 §3).
//   - Bounded memory: a command line is at most MaxLineLength octets. A
//     longer one is answered -ERR and skipped up to its end and the
//     session goes on (it counts as an error before login); a line that
//     goes on past MaxSkipLength closes the connection. Messages are
//     streamed from the Maildrop, dot-stuffed on the way (RFC 1939 §3),
//     never held whole.
//   - Bad input is -ERR with a generic text, never a panic (every command
//     recovers one, counts it in Server.PanicsRecovered and ends the
//     session) or a silent hang-up.
//   - DELE marks; nothing is removed unless the client sends QUIT in the
//     TRANSACTION state and Maildrop.Delete returns (RFC 1939 §6): a
//     dropped connection, a server Close or a lost maildrop deletes
//     nothing. +OK to that QUIT means the deletion is durable.
//
// # Sizes
//
// LIST and STAT report the octets of a message as RETR sends it before
// dot-stuffing, with CRLF line ends (RFC 1939 §11). The session sends the
// Maildrop's bytes with every bare LF made CRLF and a CRLF added after a
// last line that lacks one, so a Maildrop reports the size of its message
// in that form: its stored size when it is stored so, otherwise what
// CanonicalSize counts (Homing's node stores that count with each message,
// computed at append: IMAP APPEND may store bare LFs).
package pop3
