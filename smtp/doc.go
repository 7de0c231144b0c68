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
// The package imports only mail from Homing. What it needs from the rest of
// the node is stated as small interfaces in backend.go.
package smtp
