package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/homing-mail/homing/mail"
)

// writeJSON sends v as JSON with the given status. v is marshalled before
// anything is written, so a value that cannot be encoded still gets a
// clean 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "internal error"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError sends {"error": msg} with the given status.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// badField is a 400 for the request's field at fault; msg names it too,
// for people.
func badField(field, msg string) error {
	return &Error{Status: http.StatusBadRequest, Message: msg, Field: field}
}

// retryAfter is the Retry-After of a 503 (RFC 9110 §10.2.3), in seconds:
// about how long a partition handoff or a member's restart takes.
const retryAfter = "5"

// fail maps an error from the API (or from decoding) to its answer, by the
// error taxonomy of package mail:
//
//   - *Error -> its Status, Message and Field (and its RetryAfter on a
//     429 or 503);
//   - mail.ErrNotFound, mail.ErrNoSuchUser -> 404; mail.ErrExists -> 409;
//     mail.ErrAuthFailed -> 401; mail.ErrNoSpace -> 507 with Retry-After;
//     each with the error's text;
//   - any other error that says it is permanent (mail.ErrInvalid, a bad
//     address, an invalid rule...) -> 400 with its text: the request is
//     wrong;
//   - an error that says it is temporary (no owner, a handoff, a member
//     that did not answer, a failed disk) -> 503 with Retry-After and its
//     text;
//   - an error that says neither -> 500 "internal error", with the detail
//     logged and never sent.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *Error
	var kind interface{ Temporary() bool }
	switch {
	case errors.As(err, &ae):
		status := ae.Status
		if status < 400 || status > 599 {
			status = http.StatusInternalServerError
		}
		switch {
		case ae.RetryAfter > 0 && (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests ||
			status == http.StatusInsufficientStorage):
			w.Header().Set("Retry-After", strconv.Itoa(int((ae.RetryAfter+time.Second-1)/time.Second)))
		case status == http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", retryAfter)
		}
		writeJSON(w, status, errorBody{Error: ae.Message, Field: ae.Field})
	case errors.Is(err, mail.ErrNotFound), errors.Is(err, mail.ErrNoSuchUser):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, mail.ErrExists):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, mail.ErrAuthFailed):
		writeError(w, http.StatusUnauthorized, "authentication failed")
	case errors.Is(err, mail.ErrNoSpace):
		// A store's disk below its free-space limit (RFC 4918 507): the
		// node's free-space guard logs it once, not per request.
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusInsufficientStorage, err.Error())
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
		h.log.Debug("admin: request canceled", "method", r.Method, "path", r.URL.Path)
		writeError(w, http.StatusServiceUnavailable, "request canceled")
	case errors.As(err, &kind) && !kind.Temporary():
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.As(err, &kind):
		h.log.Warn("admin: temporarily unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", retryAfter)
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		h.log.Error("admin: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// decode reads one JSON value from the body into v: at most limit bytes,
// no unknown fields, nothing after the value. Its errors are *Error with
// status 400 (or 413 for a body over the limit) and a message saying what
// is wrong.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, limit)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return decodeError(err, limit)
		}
		return &Error{Status: http.StatusBadRequest, Message: "invalid JSON: unexpected data after the value in the body", Field: "body"}
	}
	return nil
}

// decodeError turns a json or body error into a clear 400/413. Its Field
// is the JSON field at fault, or "body" when the body as a whole is (not
// JSON, empty, of the wrong type, with data after the value).
func decodeError(err error, limit int64) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	body := func(msg string) error { return &Error{Status: http.StatusBadRequest, Message: msg, Field: "body"} }
	switch {
	case errors.As(err, &mbe):
		return &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body too large (limit %d bytes)", limit), Field: "body"}
	case errors.Is(err, io.EOF):
		return body("request body is empty, a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return body("invalid JSON: unexpected end of the body")
	case errors.As(err, &se):
		return body(fmt.Sprintf("invalid JSON at byte %d of the body: %v", se.Offset, se))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return body(fmt.Sprintf("invalid JSON: the body must be %s, got %s", jsonType(te.Type.String()), te.Value))
		}
		return badField(field, fmt.Sprintf("invalid JSON: field %q must be %s, got %s", field, jsonType(te.Type.String()), te.Value))
	default:
		// Unknown fields land here: encoding/json has no typed error for
		// DisallowUnknownFields ("json: unknown field \"x\"").
		msg := strings.TrimPrefix(err.Error(), "json: ")
		field := "body"
		if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
			field = strings.Trim(f, `"`)
		}
		return &Error{Status: http.StatusBadRequest, Message: "invalid JSON: " + msg, Field: field}
	}
}

// jsonType names a Go type of the request structs as JSON calls it:
// "a string", "a number", "an array of strings", "an object".
func jsonType(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "[]string":
		return "an array of strings"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object" // a struct: "admin.CreateAccount" is of no use to the client
}

// isAuthFailure reports whether err will be answered with 401.
func isAuthFailure(err error) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Status == http.StatusUnauthorized
	}
	return errors.Is(err, mail.ErrAuthFailed)
}
