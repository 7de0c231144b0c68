package rules

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/homing-mail/homing/mail"
)

// Limits of ParseHeader. Postfix's header_size_limit is 100 KiB; Homing
// reads a little more, and stops at a field count that keeps a condition's
// scan of the header cheap.
const (
	// MaxHeaderBytes is how much of a message ParseHeader reads.
	MaxHeaderBytes = 256 << 10
	// MaxHeaderFields is how many fields ParseHeader keeps.
	MaxHeaderFields = 1000
)

// Header parse errors; ParseHeader's errors wrap one of them.
var (
	// ErrMalformedHeader: a line in the header section is neither a field
	// nor the continuation of one.
	ErrMalformedHeader = mail.PermanentError("malformed header section")
	// ErrHeaderTooLarge: the header section is longer than MaxHeaderBytes
	// or has more than MaxHeaderFields fields.
	ErrHeaderTooLarge = mail.PermanentError("header section too large")
)

// Field is one header field: its name as written and its unfolded value,
// without the leading and trailing white space. A Value never contains CR,
// LF or NUL.
type Field struct {
	Name  string
	Value string
}

// Header is a message's header section, fields in their order. Lookups
// compare names without regard to ASCII case (RFC 5322 §1.2.2). The zero
// value is an empty header. A Header is a plain slice: it is safe for
// concurrent reads.
type Header []Field

// Get returns the value of the first field named name, or "".
func (h Header) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Values returns the values of every field named name, in order; nil when
// there is none.
func (h Header) Values(name string) []string {
	var out []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// Has reports whether a field named name is present.
func (h Header) Has(name string) bool {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// ParseHeader reads the header section of an RFC 5322 message (§2.2): the
// lines up to the first empty line, or all of raw when there is none. It
// unfolds fields (§2.2.3: a line that starts with a space or a tab
// continues the field before it; the line break is removed, the white space
// kept) and accepts CRLF and bare LF line ends. Stray CR and NUL bytes in a
// value become spaces.
//
// It is tolerant, as a mail server must be: an mbox "From " line at the
// start is skipped; a field name may be followed by
// white space before the colon (RFC 5322 §4.5.3, obsolete syntax); a line
// that is neither a field nor a continuation ends the header section there
// (as Postfix treats it: the body began without the empty line) and the
// error wraps ErrMalformedHeader; a continuation line before the first
// field is skipped (same error). It reads at most MaxHeaderBytes and keeps
// at most MaxHeaderFields fields; beyond that the error wraps
// ErrHeaderTooLarge.
//
// ParseHeader always returns the fields it could read, also with an error;
// a caller that runs rules may use them. It never panics and is safe for
// concurrent use.
func ParseHeader(raw []byte) (Header, error) {
	var (
		h       Header
		problem error
		cur     []byte // the field being unfolded
		hasCur  bool
		curName string
	)
	flush := func() {
		if hasCur {
			h = append(h, Field{Name: curName, Value: cleanValue(cur)})
			hasCur = false
			cur = cur[:0]
		}
	}
	note := func(err error) {
		if problem == nil {
			problem = err
		}
	}

	rest := raw
	if len(rest) > MaxHeaderBytes {
		rest = rest[:MaxHeaderBytes]
	}
	lineNo := 0
	if bytes.HasPrefix(rest, []byte("From ")) {
		// An mbox "From " separator line, not a field: skip it.
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:]
		} else {
			rest = nil
		}
		lineNo++
	}
	for len(rest) > 0 {
		var line []byte
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if len(raw) > MaxHeaderBytes {
				// The limit cut this line: do not keep half a field.
				note(fmt.Errorf("%w: more than %d bytes", ErrHeaderTooLarge, MaxHeaderBytes))
				break
			}
			line, rest = rest, nil
		} else {
			line, rest = rest[:i], rest[i+1:]
		}
		lineNo++
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			flush()
			return h, problem
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !hasCur {
				note(fmt.Errorf("%w: line %d continues no field", ErrMalformedHeader, lineNo))
				continue
			}
			cur = append(cur, line...)
			continue
		}
		name, value, ok := splitField(line)
		if !ok {
			flush()
			note(fmt.Errorf("%w: line %d is not a header field", ErrMalformedHeader, lineNo))
			return h, problem
		}
		flush()
		if len(h) >= MaxHeaderFields {
			note(fmt.Errorf("%w: more than %d fields", ErrHeaderTooLarge, MaxHeaderFields))
			return h, problem
		}
		curName, hasCur = name, true
		cur = append(cur[:0], value...)
	}
	flush()
	if problem == nil && len(raw) > MaxHeaderBytes {
		problem = fmt.Errorf("%w: more than %d bytes", ErrHeaderTooLarge, MaxHeaderBytes)
	}
	return h, problem
}

// splitField splits "Name: value" (RFC 5322 §2.2, with §4.5.3's white space
// before the colon). The name is printable US-ASCII other than ':'.
func splitField(line []byte) (name string, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return "", nil, false
	}
	n := bytes.TrimRight(line[:colon], " \t")
	if !validFieldName(n) {
		return "", nil, false
	}
	return string(n), line[colon+1:], true
}

// validFieldName reports whether n is an RFC 5322 §3.6.8 field-name:
// one or more printable US-ASCII characters other than ':'.
func validFieldName[T string | []byte](n T) bool {
	if len(n) == 0 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// cleanValue trims the white space around an unfolded value and turns the
// CR and NUL bytes left in it into spaces.
func cleanValue(v []byte) string {
	v = bytes.Trim(v, " \t")
	if bytes.IndexByte(v, '\r') < 0 && bytes.IndexByte(v, 0) < 0 {
		return string(v)
	}
	b := []byte(string(v))
	for i, c := range b {
		if c == '\r' || c == 0 {
			b[i] = ' '
		}
	}
	return string(bytes.Trim(b, " \t"))
}
