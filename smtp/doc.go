// Package smtp is Homing's SMTP edge: the server session that takes mail in
// (RFC 5321, with the ESMTP extensions PIPELINING RFC 2920, 8BITMIME RFC 6152,
// SMTPUTF8 RFC 6531, SIZE RFC 1870, ENHANCEDSTATUSCODES RFC 2034 and DSN
// RFC 3461), the client that relays mail out, and the Received trace header
// (RFC 5321 §4.4).
//
// It is built on github.com/emersion/go-smtp and fixes that library's traps:
// every error that reaches the wire is an *smtp.SMTPError with a generic text
// (go-smtp turns any other error into a permanent 554 carrying the internal
// text); bare LF and bare CR inside DATA are refused (SMTP smuggling); every
// limit (size, recipients, line length, timeouts, connections in total and
// per client IP) is set.
//
// Abuse (issue #9) is bounded with package guard: AUTH goes through a
// shared guard (a gate of concurrent password checks, failure budgets per
// client network and per account from a network, reserved before the
// check, with a growing delay and then 454 4.7.0); connections are limited
// per client network too, the last slots are kept for networks that hold
// few, and when most slots are taken the command timeout shrinks
// (stress, limits.go); a session's errors are slowed after a soft limit
// and end it with 421 at a hard limit; messages are rate limited per
// client network and per authenticated sender (450 4.7.1 at RCPT).
// Sessions of cluster members (X-HOMING-CLUSTER) are exempt from the
// per-IP, per-network, error and rate limits.
//
// The package imports only mail and guard from Homing. What it needs from
// the rest of the node is stated as small interfaces in backend.go.
//
// # Server
//
// NewServer builds one listener's server from a Config; Serve wraps each
// listener with the connection limits (limits.go) and hands connections to
// go-smtp, which creates a session (session.go) per EHLO. The session:
//
//   - MAIL (RFC 5321 §4.1.1.2): the reverse-path through mail.ParseAddress,
//     the null sender allowed; SIZE over the limit 552 5.3.4; BODY, SMTPUTF8,
//     RET and ENVID recorded; on the submission listener (RFC 6409) 530 5.7.0
//     until AUTH.
//   - RCPT (RFC 5321 §4.1.1.3): relay syntax and domains that are not local
//     are refused to unauthenticated clients with 554 5.7.1 before the
//     directory is asked; local addresses are resolved (550 5.1.1, 451
//     4.4.3); NOTIFY and ORCPT recorded (RFC 3461 §4.1, §4.2); duplicates
//     count once; 452 4.5.3 beyond MaxRecipients.
//   - DATA and BDAT (data.go): the message is read to its end, refused for
//     bare CR/LF or an over-long line (550 5.6.0) or its size (552 5.3.4),
//     given a Received header (received.go) and the queue id, and enqueued;
//     the reply is "250 2.0.0 OK queued as <id>".
//   - AUTH PLAIN and LOGIN (RFC 4954, auth.go) only over TLS or from
//     loopback, through the guard (Config.Auth, Config.Guard); failures
//     are delayed and the connection closed after MaxAuthFailures.
//
// Every session method recovers panics (451 4.3.0, counted in
// Server.PanicsRecovered).
//
// What go-smtp does before the session sees a command, and so cannot be
// changed here: it always advertises CHUNKING; it drops a source route
// ("<@a:u@b>" reaches the session as "u@b", which RFC 5321 Appendix C
// recommends) and unquotes quoted local parts; it applies one line limit
// to command lines and message lines alike (see Config.MaxLineLength); its
// DATA reader ends only at CRLF "." CRLF and drops a "." CR at the start
// of a line that LF does not follow.
//
// # Client
//
// Client.Send (client.go) relays one transaction per destination domain:
// routes or MX lookup with implicit MX and null MX (RFC 5321 §5.1, RFC
// 7505, client_route.go), the TLS of each host decided by one policy
// (client_tls.go): DANE (RFC 7672, dane.go), the client's own requirement,
// a route's tls= level, the domain's MTA-STS policy (RFC 8461, package
// mtasts) or opportunistic STARTTLS (RFC 3207, RFC 7435); AUTH with a
// route's credentials over TLS only; and one mail.Result per recipient
// (client_conn.go).
package smtp
