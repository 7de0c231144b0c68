package control

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/homing-mail/homing/admin"
	hmail "github.com/homing-mail/homing/mail"
)

// The API's errors for people. The actors' errors say what failed inside
// ("not found: storage: account x@y: not found": the taxonomy's word,
// the package, the key); the API answers with what the operator asked
// about ("no account x@y") and keeps the error's class and cause, so the
// status (404, 400, 409, 503) and errors.Is are what they were.

// badField is a 400 for one field of the request.
func badField(field, msg string) error {
	return &admin.Error{Status: http.StatusBadRequest, Message: msg, Field: field}
}

// isNotFound reports whether err says the thing asked for does not exist.
func isNotFound(err error) bool {
	return errors.Is(err, hmail.ErrNotFound) || errors.Is(err, hmail.ErrNoSuchUser)
}

// accountError rewrites err, from a request about the account address,
// for people: an unknown account is 404 "no account x@y" (saying when its
// domain is not a local one), a malformed address 400 naming the field.
// Other errors (temporary trouble, damage) are returned as they are.
func (a *API) accountError(err error, address string) error {
	var ae *admin.Error
	switch {
	case err == nil || errors.As(err, &ae):
		return err
	case isNotFound(err):
		msg := "no account " + address
		if d := hmail.Domain(address); d != "" && a.System.Directory() != nil && !a.System.Directory().IsLocalDomain(d) {
			msg += fmt.Sprintf(" (%s is not a local domain: %s)", d, strings.Join(a.localDomains(), ", "))
		}
		return &admin.Error{Status: http.StatusNotFound, Message: msg, Field: "address", Err: err}
	case errors.Is(err, hmail.ErrInvalid) && strings.Contains(err.Error(), "invalid address"):
		return &admin.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("address %q: %s", address, lastPart(err)), Field: "address", Err: err}
	case errors.Is(err, hmail.ErrInvalid):
		return &admin.Error{Status: http.StatusBadRequest, Message: plain(err), Err: err}
	}
	return err
}

// queueError rewrites err, from a request about queued message id: an
// unknown id is 404 "no message ID in the queue of NODE".
func (a *API) queueError(err error, id string) error {
	var ae *admin.Error
	switch {
	case err == nil || errors.As(err, &ae):
		return err
	case isNotFound(err):
		return &admin.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no message %s in the queue of %s", id, a.Info.Name), Field: "id", Err: err}
	case errors.Is(err, hmail.ErrInvalid) && strings.Contains(err.Error(), "invalid id"):
		return &admin.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("id %q is not a queue id", id), Field: "id", Err: err}
	}
	return err
}

// internalWords are the prefixes the taxonomy's sentinels and the storage
// package put before a reason.
var internalWords = []string{
	hmail.ErrNotFound.Error() + ": ", hmail.ErrInvalid.Error() + ": ", hmail.ErrExists.Error() + ": ",
	hmail.ErrNoSuchUser.Error() + ": ", "storage: ",
}

// plain is err's text without the prefixes of the taxonomy and of the
// storage package ("invalid request: storage: invalid address: ..." is
// "invalid address: ...").
func plain(err error) string {
	msg := err.Error()
	for again := true; again; {
		again = false
		for _, p := range internalWords {
			if s, ok := strings.CutPrefix(msg, p); ok {
				msg, again = s, true
			}
		}
	}
	return msg
}

// lastPart is the reason at the end of err's text: "... invalid address:
// \"bad\" is not local@domain" gives "is not local@domain" without the
// quoted value, which the caller names itself.
func lastPart(err error) string {
	msg := plain(err)
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	if strings.HasPrefix(msg, `"`) {
		if j := strings.Index(msg[1:], `" `); j >= 0 {
			msg = msg[j+3:]
		}
	}
	return msg
}

// addressReason is a parse error of mail.ParseAddress without the
// sentinel's words ("bad address syntax: no @" is "no @").
func addressReason(err error) string {
	msg := strings.TrimPrefix(err.Error(), hmail.ErrBadAddress.Error()+": ")
	if msg == "no @" {
		return "not of the form local@domain (no @)"
	}
	return msg
}
