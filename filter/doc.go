// Package filter runs external content filters: programs that speak
// CommuniGate Pro's "Helper" protocol on their standard input and output
// (CommuniGate Pro Guide, "Helper Programs" and "External Filters"), so
// that anti-virus and anti-spam engines written for that protocol can judge
// the messages Homing queues (issue #4, item 8).
//
// A Filter owns one running program. Start launches it and performs the
// version handshake; Check hands it one message file and waits for the
// verdict; Close stops it. Many Check calls may be in flight at once: each
// request carries a sequence number and the program may answer in any
// order. If the program dies it is started again after a back-off, and the
// requests it had not answered are sent to the new process.
//
// # The protocol as Homing speaks it
//
// Requests and responses are text lines ending in LF (a CR before the LF
// is accepted and dropped). Every request starts with a decimal sequence
// number; the response to it starts with the same number. Numbers grow
// over the life of a Filter and are never reused, also across restarts of
// the program, so an answer is matched to exactly one request.
//
//	homing -> program                    program -> homing
//	1 INTF 3                             1 INTF 3
//	2 FILE /var/homing/tmp/filter-77.msg 2 ADDHEADER "X-Spam: no" OK
//	3 FILE /var/homing/tmp/filter-78.msg 3 REJECTED "virus found"
//	                                     * scanner database updated
//
// INTF (the handshake, sent before anything else to every new process):
// Homing sends its interface version (3); the program answers with its
// own, a positive decimal number. Any version is accepted; responses are
// parsed the same way whatever the version. A program that does not answer
// INTF within Config.Timeout, or answers something else, fails to start.
//
// FILE: the argument is the absolute path of the message file (the rest of
// the line, unquoted; Check refuses paths containing CR, LF or NUL). The
// answers, and the Verdict each becomes:
//
//	seq OK                          KindOK
//	seq ADDHEADER "fields" [OK]     KindOK with Headers
//	seq DISCARD                     KindDiscard: accept, deliver to nobody
//	seq REJECTED ["report"]         KindReject: permanent, report to the sender
//	seq ERROR ["report"]            KindError: permanent, the message is bad
//	seq FAILURE ["report"]          KindFailure: temporary, try again later
//	* text                          information: logged, matched to nothing
//
// Keywords are case-insensitive. A report is a quoted string or, without
// quotes, the rest of the line. Quoted strings use CommuniGate's escapes:
// \" \\ \r \n \t, \ddd (a byte in three decimal digits) and \e, the line
// break between two header lines. Report texts end up in SMTP replies and
// delivery reports, so control characters in them become spaces, invalid
// UTF-8 is replaced and they are cut to 512 bytes.
//
// ADDHEADER carries one or more header fields separated by \e; a part that
// starts with a space or tab continues the field before it (it is unfolded,
// RFC 5322 §2.2.3). Every field must be "name: value" with a name of
// printable ASCII other than ":" (RFC 5322 §2.2, §3.6.8), a value without
// CR, LF, NUL or other control characters except tab, valid UTF-8 (RFC
// 6532), at most 998 bytes in all (RFC 5322 §2.1.1). An answer whose header
// breaks any of these rules, a header injection attempt such as
// "X-A: 1\r\nBcc: x", is refused as a whole: the Verdict is KindFailure and
// the error matches ErrBadHeader and ErrProtocol. Homing never passes a
// message on with a filter's answer half applied.
//
// Lines are at most 4096 bytes (CommuniGate's limit for helper responses);
// a longer line, an unknown keyword, or a malformed answer is a protocol
// error: it is logged and counted, and if its sequence number can be read,
// that request ends with KindFailure and an error matching ErrProtocol.
// Answers to requests that are no longer waiting (timed out, cancelled)
// are logged and dropped. CommuniGate's later response keywords (MIRROR,
// ADDROUTE, ...) are not supported and count as protocol errors.
//
// Anything the program writes to standard error is logged as a warning.
//
// Where CommuniGate's description leaves room, these are Homing's choices:
// the version it announces (3) and that it accepts any version back; ERROR
// as a permanent refusal of the message (the filter says the message is
// bad) and FAILURE as the only temporary answer; ADDHEADER with or without
// a trailing OK; unquoted reports; the strict header checks above; and the
// envelope format of the message file below.
//
// # Timeouts, restarts, shutdown
//
// A request not answered within Config.Timeout ends with KindFailure and
// ErrTimeout. As CommuniGate does, a program that misses a deadline is
// presumed hung and is killed; it is then restarted like a program that
// died. A request cancelled through its context ends with KindFailure and
// the context's error, and leaves the program alone.
//
// When the program exits (or closes its standard output) Homing waits
// Config.Restart, starts it again, performs the handshake and sends every
// pending request to the new process. Each request is sent at most
// MaxAttempts (3) times; a request whose process died under it for the
// third time ends with KindFailure and ErrGaveUp (a message that crashes
// the filter cannot crash it forever). The back-off doubles after each
// restart up to 30 s and falls back to Config.Restart once a process has
// answered a request. Requests made while no process runs wait for the next
// one, within their own timeout.
//
// The program runs in its own process group; killing it kills the group,
// so a shell script's children do not outlive it. Close closes the
// program's standard input, gives it Config.Grace to exit, then kills it,
// and ends every pending request with KindFailure and ErrClosed. A program
// must exit at the end of its input: that is also all it learns if Homing
// itself dies. Its environment is Homing's without the HOMING_ variables,
// so the cluster secret never reaches it.
//
// # The message file
//
// WriteMessageFile writes what a filter reads: CommuniGate-style envelope
// lines followed by the RFC 5322 message, all with CRLF line ends:
//
//	Return-Path: <sender@example.net>      (exactly one; "<>" for the null sender)
//	Envelope-To: <rcpt1@example.test>      (one line per recipient, in order)
//	Envelope-To: <rcpt2@example.test>
//	Received: ...                          (the message, byte for byte)
//
// The envelope lines have header syntax, so the whole file is itself a
// valid message and a scanner that knows nothing of envelopes reads it as
// one. A filter that wants the envelope reads the first line and the
// Envelope-To lines that follow it; the message starts at the first line
// that is not an Envelope-To line. The file is created with mode 0600 in a
// directory the caller chooses; the caller (or CheckMessage) removes it
// once the check is over.
//
// # Concurrency
//
// All methods of Filter and Metrics are safe for concurrent use. A Filter
// starts goroutines (one supervisor, and a writer, a reader, a standard
// error reader and a waiter per process) and Close ends all of them. The
// package has no package-level mutable state.
package filter
