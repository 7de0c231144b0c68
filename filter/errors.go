package filter

import (
	"strconv"

	"github.com/homing-mail/homing/mail"
)

// Errors returned with a KindFailure verdict. Callers test them with
// errors.Is; all of them mean "try again later" except ErrInvalidPath and
// ErrInvalidConfig, which are the caller's mistakes.
var (
	// ErrTimeout: the program did not answer within Config.Timeout.
	ErrTimeout = mail.TemporaryError("filter: request timed out")
	// ErrGaveUp: the program died MaxAttempts times while the request was
	// pending.
	ErrGaveUp = mail.TemporaryError("filter: program died too often during the request")
	// ErrClosed: the Filter was closed before the request was answered.
	ErrClosed = mail.TemporaryError("filter: closed")
	// ErrProtocol: the program's answer broke the protocol.
	ErrProtocol = mail.TemporaryError("filter: protocol violation")
	// ErrBadHeader: an ADDHEADER answer carried an invalid header field
	// (a header injection attempt, a bad name, a control character). An
	// error matching it also matches ErrProtocol.
	ErrBadHeader = mail.TemporaryError("filter: invalid header from filter")
	// ErrInvalidPath: the message path given to Check cannot be sent on a
	// protocol line (empty, or it contains CR, LF or NUL).
	ErrInvalidPath = mail.PermanentError("filter: invalid message path")
	// ErrInvalidConfig: Start was given an unusable Config.
	ErrInvalidConfig = mail.PermanentError("filter: invalid config")
	// ErrInvalidEnvelope: WriteMessageFile was given an address that
	// cannot be written on an envelope line.
	ErrInvalidEnvelope = mail.PermanentError("filter: invalid envelope address")
)

// ProtocolError describes one line from the program that broke the
// protocol. It matches ErrProtocol, and ErrBadHeader when the problem was a
// header field.
type ProtocolError struct {
	// Seq is the sequence number the line carried, 0 if none could be read.
	Seq uint64
	// Line is the offending line, cut to 200 bytes.
	Line string
	// Reason says what was wrong.
	Reason string
	// Header is set when the line was refused for an invalid header field.
	Header bool
}

// Temporary is true: the filter misbehaved, the message is not at fault.
func (e *ProtocolError) Temporary() bool { return true }

func (e *ProtocolError) Error() string {
	s := "filter: protocol violation: " + e.Reason
	if e.Seq != 0 {
		s += " (request " + strconv.FormatUint(e.Seq, 10) + ")"
	}
	return s + ": " + strconv.Quote(e.Line)
}

// Unwrap lets errors.Is match ErrProtocol and, for header problems,
// ErrBadHeader.
func (e *ProtocolError) Unwrap() []error {
	if e.Header {
		return []error{ErrProtocol, ErrBadHeader}
	}
	return []error{ErrProtocol}
}
