package filter

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// maxFieldBytes is RFC 5322 §2.1.1's limit on a line, applied to a whole
// (unfolded) field added by a filter.
const maxFieldBytes = 998

// headerFields turns the parts of an ADDHEADER string (split at \e) into
// complete header fields, unfolding continuation parts into the field
// before them, and checks each one (validField). Empty parts are skipped.
func headerFields(parts []string) ([]string, error) {
	var fields []string
	for _, p := range parts {
		switch {
		case p == "":
			continue
		case p[0] == ' ' || p[0] == '\t':
			if len(fields) == 0 {
				return nil, errors.New("continuation line before any header field")
			}
			fields[len(fields)-1] += p // RFC 5322 §2.2.3: unfolding drops only the CRLF
		default:
			fields = append(fields, p)
		}
	}
	if len(fields) == 0 {
		return nil, errors.New("no header field")
	}
	for _, f := range fields {
		if err := validField(f); err != nil {
			return nil, err
		}
	}
	return fields, nil
}

// validField checks one unfolded header field "name: value": the name is
// printable US-ASCII other than the colon (RFC 5322 §3.6.8), the value has
// no CR, LF, NUL or other control character except tab and is valid UTF-8
// (RFC 6532 §3.2), and the whole is at most 998 bytes. The CR/LF rule is
// what stops a filter from injecting extra fields or a body.
func validField(f string) error {
	if len(f) > maxFieldBytes {
		return errors.New("header field longer than 998 bytes")
	}
	name, value, ok := strings.Cut(f, ":")
	if !ok {
		return errors.New("header field without a colon")
	}
	if name == "" {
		return errors.New("header field with an empty name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 {
			return errors.New("invalid character in header field name")
		}
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		switch {
		case c == '\r' || c == '\n':
			return errors.New("CR or LF in header field value")
		case c == '\t':
		case c < 0x20 || c == 0x7f:
			return errors.New("control character in header field value")
		}
	}
	if !utf8.ValidString(value) {
		return errors.New("header field value is not valid UTF-8")
	}
	return nil
}
