package smtp

import (
	"errors"
	"strconv"
	"strings"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
)

// reply builds the *gosmtp.SMTPError that go-smtp writes as it is. Every
// error a session method returns is one of these: go-smtp turns any other
// error into a reply carrying the error's internal text (and, from Data, a
// permanent 554).
func reply(code int, status mail.Status, text string) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: enhanced(status), Message: text}
}

// enhanced converts an RFC 3463 status; a malformed one becomes
// EnhancedCodeNotSet, for which go-smtp writes "x.0.0".
func enhanced(status mail.Status) gosmtp.EnhancedCode {
	if _, ok := mail.ParseStatus(string(status)); !ok {
		return gosmtp.EnhancedCodeNotSet
	}
	var ec gosmtp.EnhancedCode
	for i, p := range strings.Split(string(status), ".") {
		ec[i], _ = strconv.Atoi(p)
	}
	return ec
}

// statusOf is the status of a reply another server sent with code: its
// enhanced code when it has one of the code's class, otherwise the generic
// status of the class (RFC 3463 §2).
func statusOf(ec gosmtp.EnhancedCode, code int) mail.Status {
	if ec == gosmtp.EnhancedCodeNotSet || ec[1] < 0 || ec[2] < 0 {
		return mail.Status("").ForCode(code)
	}
	return mail.Status(strconv.Itoa(ec[0]) + "." + strconv.Itoa(ec[1]) + "." + strconv.Itoa(ec[2])).ForCode(code)
}

// Replies the session sends. Texts are generic: nothing internal reaches
// the client. Each call returns a fresh value, so no caller can change a
// shared one.
func errTempFailure() error {
	return reply(451, mail.StatusLocalError, "Temporary local problem, please try again later")
}
func errAuthRequired() error { return reply(530, mail.StatusAuthRequired, "Authentication required") }
func errNestedMail() error   { return reply(503, mail.StatusBadCommand, "Sender already specified") }
func errNoRecipients() error { return reply(503, mail.StatusBadCommand, "No valid recipients") }
func errTooBig() error {
	return reply(552, mail.StatusMessageTooBig, "Message size exceeds fixed maximum message size")
}
func errBareCRLF() error { return reply(550, mail.StatusBadContent, "Message contains bare CR or LF") }
func errLineTooLong() error {
	return reply(550, mail.StatusBadContent, "Message contains a line that is too long")
}
func errRelayDenied() error { return reply(554, mail.StatusRefused, "Relay access denied") }
func errNoSuchUser() error  { return reply(550, mail.StatusNoSuchUser, "No such user here") }
func errDisabled() error {
	return reply(550, mail.StatusMailboxDisabled, "Mailbox disabled, not accepting messages")
}
func errDirectoryDown() error {
	return reply(451, mail.StatusDirectoryFailure, "Directory temporarily unavailable, please try again later")
}
func errTooManyRcpts() error { return reply(452, mail.StatusTooManyRcpts, "Too many recipients") }
func errNeedUTF8() error {
	return reply(553, mail.StatusNeedsUTF8, "Non-ASCII address requires SMTPUTF8")
}

// errNoSpace is Postfix's answer below queue_minfree (RFC 5321 452, RFC
// 3463 4.3.1 mail system full; RFC 1870 §6.1 for a SIZE that does not
// fit now).
func errNoSpace() error {
	return reply(452, mail.StatusSystemFull, "Insufficient system storage, please try again later")
}
func errRateLimited() error {
	return reply(450, mail.StatusRefused.Transient(), "Too much mail from this client; try again later")
}

// errorReply turns the *mail.Error in err's chain (a rule's reject, a
// filter's refusal) into the reply the client sees: its code, status and
// reason. Without one, a store short of space (mail.ErrNoSpace) is 452
// 4.3.1; anything else, or a code outside 4xx/5xx, is the generic
// temporary failure: an error Homing does not classify is its own. CR and
// LF (which would split the reply) and other control characters are
// dropped from the reason.
func errorReply(err error) error {
	r := mail.AsError(err)
	if r == nil && errors.Is(err, mail.ErrNoSpace) {
		return errNoSpace()
	}
	if r == nil || r.Code < 400 || r.Code > 599 {
		return errTempFailure()
	}
	text := strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return -1
		}
		return c
	}, r.Reason)
	if text == "" {
		text = "Rejected"
	}
	return reply(r.Code, r.Status.ForCode(r.Code), text)
}
