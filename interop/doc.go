// Package interop tests Homing against real third-party clients over
// loopback, each talking to a real `homing serve` process (testkit's
// Process): isync's mbsync syncing a mailbox both ways with a local
// Maildir, Python's imaplib running scenarios for the IMAP commands and
// the answers to bad input, and fetchmail retrieving over POP3.
//
// The package holds only this comment; its tests need the clients, which
// .ci/run installs from Debian (isync, fetchmail, and /usr/bin/python3,
// Debian's interpreter: the python3 first on PATH may be another one).
package interop
