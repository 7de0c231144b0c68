package rules

import "github.com/homing-mail/homing/mail"

// Outcome is what a rule set does to one message. The zero value is "no
// rule matched: deliver the message as it is". An Outcome owns its slices
// and pointers: the caller may change them.
type Outcome struct {
	// Reject, when set, refuses the message with its code, enhanced status
	// and text: at SMTP time the client gets that reply; at delivery the
	// recipient fails with it. A reject ends the evaluation, and a rejected
	// outcome carries nothing else but Matched: no copies of a refused
	// message go anywhere.
	Reject *mail.Error
	// Discard: the original recipients do not get the message. Redirect and
	// Forward recipients still do (forward + discard is "forward without
	// keeping a copy"). A discard ends the evaluation.
	Discard bool
	// Redirect replaces the original recipients with these addresses
	// (normalised by mail.ParseAddress, without duplicates).
	Redirect []string
	// Forward adds these recipients (normalised, without duplicates).
	Forward []string
	// AddHeaders are header fields to prepend, in order and without
	// duplicates, each a complete "Name: value" line without its CRLF, at
	// most 998 bytes, with non-ASCII text RFC 2047 encoded.
	AddHeaders []string
	// Folder is where the message is filed (account rules); "" is the
	// inbox. The first matching rule that names a folder decides.
	Folder string
	// Filters are the external filters to run, in order, without
	// duplicates.
	Filters []string
	// Vacation, when set, asks for an RFC 3834 auto-reply (account rules).
	// The first matching rule that asks for one decides.
	Vacation *Vacation
	// Matched names the rules that matched, in the order they ran.
	Matched []string
}

// Vacation is an auto-reply a rule asks for. The account actor sends it
// when ShouldAutoReply agrees and the sender got none in the last Days days.
type Vacation struct {
	// Text is the body of the reply.
	Text string
	// Subject of the reply; "" means "Auto: " and the original subject.
	Subject string
	// From is the address the reply comes from; "" means the account's.
	From string
	// Days is how long one sender waits for another reply (1 to 365).
	Days int
}

// DefaultVacationDays is RFC 5230 §4.1's default interval between two
// replies to one sender.
const DefaultVacationDays = 7

// Keep reports whether the original recipients get the message: no reject,
// no discard and no redirect.
func (o Outcome) Keep() bool {
	return o.Reject == nil && !o.Discard && len(o.Redirect) == 0
}

// Recipients returns who gets the message when its original recipients
// are orig: nobody when it is rejected; else orig when Keep, then the
// Redirect and Forward addresses, without duplicates (compared exactly, as
// orig is expected to be normalised by mail.ParseAddress).
func (o Outcome) Recipients(orig []string) []string {
	if o.Reject != nil {
		return nil
	}
	var out []string
	if o.Keep() {
		out = appendUnique(out, orig...)
	}
	out = appendUnique(out, o.Redirect...)
	return appendUnique(out, o.Forward...)
}

// appendUnique appends the elements of add that dst does not hold yet.
func appendUnique(dst []string, add ...string) []string {
	for _, a := range add {
		dup := false
		for _, d := range dst {
			if d == a {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, a)
		}
	}
	return dst
}
