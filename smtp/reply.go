package smtp

import (
	"strconv"
	"strings"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
)

// reply builds the *gosmtp.SMTPError that go-smtp writes as it is. Every
// error a session method returns is one of these: go-smtp turns any other
// error into a reply carrying the error's internal text (and, from Data, a
// permanent 554).
func reply(code int, status, text string) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: enhanced(status), Message: text}
}

// enhanced parses an RFC 3463 status "x.y.z"; anything else becomes
// EnhancedCodeNotSet, for which go-smtp writes "x.0.0".
func enhanced(status string) gosmtp.EnhancedCode {
	parts := strings.Split(status, ".")
	if len(parts) != 3 {
		return gosmtp.EnhancedCodeNotSet
	}
	var ec gosmtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return gosmtp.EnhancedCodeNotSet
		}
		ec[i] = n
	}
	if ec[0] != 2 && ec[0] != 4 && ec[0] != 5 {
		return gosmtp.EnhancedCodeNotSet
	}
	return ec
}

// Replies the session sends. Texts are generic: nothing internal reaches
// the client. Each call returns a fresh value, so no caller can change a
// shared one.
func errTempFailure() error {
	return reply(451, "4.3.0", "Temporary local problem, please try again later")
}
func errAuthRequired() error { return reply(530, "5.7.0", "Authentication required") }
func errNestedMail() error   { return reply(503, "5.5.1", "Sender already specified") }
func errNoRecipients() error { return reply(503, "5.5.1", "No valid recipients") }
func errTooBig() error       { return reply(552, "5.3.4", "Message size exceeds fixed maximum message size") }
func errBareCRLF() error     { return reply(550, "5.6.0", "Message contains bare CR or LF") }
func errLineTooLong() error  { return reply(550, "5.6.0", "Message contains a line that is too long") }
func errRelayDenied() error  { return reply(554, "5.7.1", "Relay access denied") }
func errNoSuchUser() error   { return reply(550, "5.1.1", "No such user here") }
func errDirectoryDown() error {
	return reply(451, "4.4.3", "Directory temporarily unavailable, please try again later")
}
func errTooManyRcpts() error { return reply(452, "4.5.3", "Too many recipients") }
func errNeedUTF8() error     { return reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8") }

// rejectReply turns a *mail.RejectError into the reply the client sees.
// A code outside 4xx/5xx becomes the generic temporary failure; CR and LF
// (which would split the reply) and other control characters are dropped.
func rejectReply(r *mail.RejectError) error {
	if r.Code < 400 || r.Code > 599 {
		return errTempFailure()
	}
	text := strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return -1
		}
		return c
	}, r.Text)
	if text == "" {
		text = "Rejected"
	}
	status := r.Status
	if ec := enhanced(status); ec == gosmtp.EnhancedCodeNotSet || ec[0] != r.Code/100 {
		status = strconv.Itoa(r.Code/100) + ".0.0"
	}
	return reply(r.Code, status, text)
}
