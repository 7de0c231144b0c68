package filter

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/homing-mail/homing/mail"
)

// Response keywords (upper case; the parser folds case).
const (
	verbINTF      = "INTF"
	verbOK        = "OK"
	verbAddHeader = "ADDHEADER"
	verbDiscard   = "DISCARD"
	verbRejected  = "REJECTED"
	verbError     = "ERROR"
	verbFailure   = "FAILURE"
)

// maxTextBytes caps a report text kept in a Verdict.
const maxTextBytes = 512

// response is one parsed line from the program.
type response struct {
	info    bool   // a "*" line; text holds what follows the asterisk
	text    string // the information text of a "*" line
	seq     uint64 // the sequence number (0 if none could be read)
	hasSeq  bool   // seq was read, even if the rest of the line is bad
	verb    string // upper-case keyword
	version int    // the INTF version
	verdict Verdict
}

// parseResponse parses one line (its line end already removed, or not:
// a trailing CR and LF are dropped). On error the response still carries
// the sequence number if it could be read, so that the request can be
// ended. The error is a *ProtocolError.
func parseResponse(line string) (response, error) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	var r response
	fail := func(reason string, header bool) (response, error) {
		return r, &ProtocolError{Seq: r.seq, Line: cut(line, 200), Reason: reason, Header: header}
	}
	bad := func(reason string) (response, error) { return fail(reason, false) }
	if strings.HasPrefix(line, "*") {
		r.info = true
		r.text = sanitizeText(strings.TrimSpace(line[1:]))
		return r, nil
	}
	i := 0
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i == 0 {
		return bad("no sequence number")
	}
	seq, err := strconv.ParseUint(line[:i], 10, 64)
	if err != nil {
		return bad("sequence number out of range")
	}
	r.seq, r.hasSeq = seq, true
	if i == len(line) || line[i] != ' ' {
		return bad("no keyword after the sequence number")
	}
	rest := strings.TrimLeft(line[i:], " ")
	verb, rest, _ := strings.Cut(rest, " ")
	rest = strings.Trim(rest, " ")
	r.verb = strings.ToUpper(verb)
	switch r.verb {
	case verbINTF:
		v, err := strconv.Atoi(rest)
		if err != nil || v <= 0 || len(rest) > 9 || rest[0] == '+' {
			return bad("INTF needs a positive version number")
		}
		r.version = v
	case verbOK:
		if rest != "" {
			return bad("unexpected text after OK")
		}
		r.verdict = Verdict{Kind: KindOK}
	case verbDiscard:
		if rest != "" {
			return bad("unexpected text after DISCARD")
		}
		r.verdict = Verdict{Kind: KindDiscard}
	case verbAddHeader:
		if !strings.HasPrefix(rest, `"`) {
			return bad("ADDHEADER needs a quoted string")
		}
		parts, after, err := unquote(rest)
		if err != nil {
			return bad("ADDHEADER: " + err.Error())
		}
		if after = strings.Trim(after, " "); after != "" && !strings.EqualFold(after, verbOK) {
			return bad("ADDHEADER must be followed by OK or nothing")
		}
		fields, err := headerFields(parts)
		if err != nil {
			return fail("ADDHEADER: "+err.Error(), true)
		}
		r.verdict = Verdict{Kind: KindOK, Headers: fields}
	case verbRejected, verbError, verbFailure:
		text := rest
		if strings.HasPrefix(rest, `"`) {
			parts, after, err := unquote(rest)
			if err != nil {
				return bad(r.verb + ": " + err.Error())
			}
			if strings.Trim(after, " ") != "" {
				return bad(r.verb + ": unexpected text after the report")
			}
			text = strings.Join(parts, " ")
		}
		kind := map[string]Kind{verbRejected: KindReject, verbError: KindError, verbFailure: KindFailure}[r.verb]
		r.verdict = Verdict{Kind: kind, Text: sanitizeText(text)}
	default:
		return bad("unknown keyword")
	}
	return r, nil
}

// errUnterminated and friends are the reasons unquote gives.
var (
	errUnterminated = mail.TemporaryError("unterminated quoted string")
	errBadEscape    = mail.TemporaryError("invalid escape in quoted string")
)

// unquote reads the quoted string at the start of s (which begins with a
// double quote) and returns its content split at the \e escapes, and the
// text after the closing quote. Escapes: \" \\ \r \n \t \e and \ddd (three
// decimal digits, at most 255).
func unquote(s string) (parts []string, rest string, err error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return append(parts, b.String()), s[i+1:], nil
		case '\\':
			i++
			if i == len(s) {
				return nil, "", errUnterminated
			}
			switch e := s[i]; e {
			case '"', '\\':
				b.WriteByte(e)
			case 'r':
				b.WriteByte('\r')
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'e':
				parts = append(parts, b.String())
				b.Reset()
			default:
				if i+3 > len(s) || !isDigits(s[i:i+3]) {
					return nil, "", errBadEscape
				}
				n, _ := strconv.Atoi(s[i : i+3])
				if n > 255 {
					return nil, "", errBadEscape
				}
				b.WriteByte(byte(n))
				i += 2
			}
		default:
			b.WriteByte(c)
		}
	}
	return nil, "", errUnterminated
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// sanitizeText makes a report safe for an SMTP reply or a DSN: control
// characters become spaces, invalid UTF-8 is replaced, surrounding space is
// trimmed, and the result is cut to maxTextBytes on a character boundary.
func sanitizeText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
	return cut(strings.TrimSpace(s), maxTextBytes)
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// seqPrefix reads the sequence number at the start of a line that could
// not be parsed as a whole (it was too long).
func seqPrefix(line string) (uint64, bool) {
	i := 0
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ' ' {
		return 0, false
	}
	seq, err := strconv.ParseUint(line[:i], 10, 64)
	return seq, err == nil
}
