package rules

import (
	"fmt"
	"math"
	"mime"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/homing-mail/homing/mail"
)

// maxConditionValue bounds a condition's Value.
const maxConditionValue = 1000

// fieldKind is the property a condition looks at.
type fieldKind uint8

const (
	fieldSender fieldKind = iota + 1
	fieldRecipient
	fieldHeader
	fieldSize
	fieldSource
	fieldAuth
)

// opKind is a positive comparison; cond.negate turns it around.
type opKind uint8

const (
	opIs opKind = iota + 1
	opContains
	opMatches
	opGreater
	opLess
)

// cond is a Condition checked and prepared for matching.
type cond struct {
	field  fieldKind
	header string // the field name, for fieldHeader; the method, for fieldAuth
	op     opKind
	negate bool
	text   string // the value, lower case, for text ops
	size   int64  // the value, for size ops
}

// compileCondition checks c and prepares it. Field and Op are compared
// without regard to case.
func compileCondition(c Condition) (cond, error) {
	var k cond
	trimmed := strings.TrimSpace(c.Field)
	f := strings.ToLower(trimmed)
	switch {
	case f == FieldSender:
		k.field = fieldSender
	case f == FieldRecipient:
		k.field = fieldRecipient
	case f == FieldSubject:
		k.field, k.header = fieldHeader, "Subject"
	case f == FieldSize:
		k.field = fieldSize
	case f == FieldSource:
		k.field = fieldSource
	case strings.HasPrefix(f, FieldAuthPrefix):
		method := f[len(FieldAuthPrefix):]
		if !knownAuthMethod(method) {
			return k, fmt.Errorf("field %q: %q is not spf, dkim or dmarc", c.Field, method)
		}
		k.field, k.header = fieldAuth, method
	case len(trimmed) >= len(FieldHeaderPrefix) && strings.EqualFold(trimmed[:len(FieldHeaderPrefix)], FieldHeaderPrefix):
		name := trimmed[len(FieldHeaderPrefix):]
		if !validFieldName(name) {
			return k, fmt.Errorf("field %q: %q is not a header field name", c.Field, name)
		}
		k.field, k.header = fieldHeader, name
	default:
		return k, fmt.Errorf("unknown field %q (want sender, recipient, subject, size, source, auth.spf, auth.dkim, auth.dmarc or header:<Name>)", c.Field)
	}

	switch strings.ToLower(strings.TrimSpace(c.Op)) {
	case OpIs:
		k.op = opIs
	case OpIsNot:
		k.op, k.negate = opIs, true
	case OpContains:
		k.op = opContains
	case OpNotContains:
		k.op, k.negate = opContains, true
	case OpMatches:
		k.op = opMatches
	case OpNotMatches:
		k.op, k.negate = opMatches, true
	case OpGreater:
		k.op = opGreater
	case OpLess:
		k.op = opLess
	default:
		return k, fmt.Errorf("unknown op %q (want is, is-not, contains, not-contains, matches, not-matches, greater or less)", c.Op)
	}

	switch k.field {
	case fieldSize:
		if k.op != opIs && k.op != opGreater && k.op != opLess {
			return k, fmt.Errorf("op %q does not apply to size (want greater, less, is or is-not)", c.Op)
		}
		n, err := parseSize(c.Value)
		if err != nil {
			return k, err
		}
		k.size = n
		return k, nil
	case fieldSource:
		if k.op != opIs {
			return k, fmt.Errorf("op %q does not apply to source (want is or is-not)", c.Op)
		}
		s := mail.Source(strings.ToLower(strings.TrimSpace(c.Value)))
		if !knownSource(s) {
			return k, fmt.Errorf("unknown source %q (want smtp, submission, api, dsn, cluster or rule)", c.Value)
		}
		k.text = string(s)
		return k, nil
	}
	if k.op == opGreater || k.op == opLess {
		return k, fmt.Errorf("op %q applies to size only", c.Op)
	}
	if err := checkText("value", c.Value, maxConditionValue); err != nil {
		return k, err
	}
	if c.Value == "" && k.op == opContains {
		return k, fmt.Errorf("op %q needs a value", c.Op)
	}
	k.text = strings.ToLower(c.Value)
	return k, nil
}

// parseSize reads a byte count: digits with an optional K, M or G suffix
// (powers of 1024).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			t = strings.TrimSpace(t[:len(t)-1])
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || !allDigits(t) {
		return 0, fmt.Errorf("size %q is not a byte count (digits, optionally followed by K, M or G)", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// holds reports whether the condition holds for m.
func (k *cond) holds(m *Message) bool {
	var any bool
	switch k.field {
	case fieldSize:
		switch k.op {
		case opGreater:
			return m.Size > k.size
		case opLess:
			return m.Size < k.size
		}
		return (m.Size == k.size) != k.negate
	case fieldSource:
		any = k.test(string(m.Source))
	case fieldAuth:
		any = k.test(m.Auth[k.header])
	case fieldSender:
		any = k.test(m.Sender)
	case fieldRecipient:
		for _, r := range m.Recipients {
			if k.test(r) {
				any = true
				break
			}
		}
	case fieldHeader:
		for _, f := range m.Header {
			if strings.EqualFold(f.Name, k.header) && k.test(decodeValue(f.Value)) {
				any = true
				break
			}
		}
	}
	return any != k.negate
}

// test applies the positive text op to one value.
func (k *cond) test(v string) bool {
	v = strings.ToLower(v)
	switch k.op {
	case opIs:
		return v == k.text
	case opContains:
		return strings.Contains(v, k.text)
	case opMatches:
		return glob(k.text, v)
	}
	return false
}

// decodeValue decodes the RFC 2047 encoded words of a header value; a value
// that does not decode (an unknown charset, bad syntax) is compared as it
// is written.
func decodeValue(v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	var d mime.WordDecoder // utf-8, us-ascii and iso-8859-1
	s, err := d.DecodeHeader(v)
	if err != nil {
		return v
	}
	return s
}

// checkText refuses a text that is not valid UTF-8, holds a control
// character other than tab, or is longer than max bytes.
func checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s longer than %d bytes", what, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if r == '\r' || r == '\n' {
			return fmt.Errorf("%s contains CR or LF", what)
		}
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return fmt.Errorf("%s contains control character %q", what, r)
		}
	}
	return nil
}
