package smtp

import (
	"context"
	"io"
	"net/netip"

	"github.com/homing-mail/homing/mail"
)

// Checker checks the messages that arrive from outside the cluster:
// sessions without AUTH that are not a member's (SPF, DKIM, DMARC; the
// node's is package inbound's).
//
// Implementations must be safe for concurrent use by many sessions.
type Checker interface {
	// Begin starts the checks of message id from the client at ip
	// (HELO name, reverse-path). The session writes the client's bytes
	// to the Check as they arrive, and the Check passes them on to out,
	// less what it removes (forged Authentication-Results fields).
	Begin(ctx context.Context, id string, ip netip.Addr, helo, mailFrom string, out io.Writer) Check
}

// Check is the checks of one message. Exactly one of End and Abort is
// called, once.
type Check interface {
	io.Writer
	// End returns the verdict once the whole message was written.
	End() Verdict
	// Abort ends the checks of a message that is not taken.
	Abort()
}

// Verdict is the outcome of the checks of a message.
type Verdict struct {
	// Header is put in front of the message (Authentication-Results).
	Header []byte
	// Refuse, when set, is the reply instead of 250 (550 5.7.1 for a
	// DMARC p=reject failure, 451 4.7.1 when DNS failed where it might
	// have been one). It is sent as it is: its Reason is for the client.
	Refuse *mail.Error
	// Detail says the results for people (the journey, logs).
	Detail string
}

// writerFunc is an io.Writer of a func that keeps its own error.
type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }
