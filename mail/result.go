package mail

import "fmt"

// Result is the outcome of one delivery attempt for one recipient, whether
// to a local mailbox or to a remote MTA. It carries what an RFC 3464 report
// needs.
type Result struct {
	// Rcpt is the Key of the recipient the result is for.
	Rcpt int
	// Code is the SMTP reply code (250, 451, 550, ...). Codes 2xx mean
	// delivered, 4xx a temporary failure, 5xx a permanent one.
	Code int
	// Status is the RFC 3463 enhanced status code (StatusMailboxFull...).
	Status Status
	// Text is the human-readable reply or error text.
	Text string
	// RemoteMTA is the host that answered, for relay results.
	RemoteMTA string
	// Relay says where the attempt went, for the delivery log: the host,
	// its address and port of a relay ("mx.example.net[192.0.2.1]:25"),
	// the member that owns the account of a Local Delivery ("be1");
	// "" when it went nowhere. It is not kept with the recipient.
	Relay string
	// Damaged, when set, says why the attempt stopped: the message's
	// stored body failed its check (its length or CRC-32C) while it was
	// read. The queue then holds the whole message as damaged instead
	// of counting the attempt (the bytes are not what was accepted).
	Damaged string
}

// OK reports whether the recipient got the message.
func (r Result) OK() bool { return r.Code/100 == 2 }

// Temporary reports whether the attempt may be repeated.
func (r Result) Temporary() bool { return r.Code/100 == 4 }

// String is "451 4.3.0 text".
func (r Result) String() string {
	if r.Status != "" {
		return fmt.Sprintf("%d %s %s", r.Code, r.Status, r.Text)
	}
	return fmt.Sprintf("%d %s", r.Code, r.Text)
}

// Temp builds a temporary-failure result (451).
func Temp(status Status, text string) Result { return Result{Code: 451, Status: status, Text: text} }

// Perm builds a permanent-failure result (550).
func Perm(status Status, text string) Result { return Result{Code: 550, Status: status, Text: text} }

// Delivered is the result of a successful delivery.
func Delivered(text string) Result { return Result{Code: 250, Status: StatusOK, Text: text} }
