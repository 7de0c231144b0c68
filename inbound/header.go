package inbound

import (
	"bytes"
	"io"
	"strings"
)

// maxField bounds the header field held while deciding whether to drop
// it; a longer one is passed on as it is (it is no field of ours).
const maxField = 64 << 10

// maxHeader is how much of the header section is kept for the DMARC check
// (the From field).
const maxHeader = 256 << 10

// headerFilter passes a message through, dropping the header fields
// Authentication-Results whose authserv-id is ours (RFC 8601 §5: a
// border MTA removes them, so a field with its id is always its own),
// and keeps a copy of the header section.
type headerFilter struct {
	id  string // our authserv-id, lower case
	out io.Writer

	inHeader bool
	line     []byte // the current line, until its LF
	field    []byte // the current field (its lines so far)
	passing  bool   // the current field is too long to hold: passed on
	header   bytes.Buffer
	removed  int
	err      error
	// onEnd, when set, is called once the header section has been read
	// (its blank line passed on), with the section as it came (at most
	// maxHeader bytes).
	onEnd func(raw []byte)
}

func newHeaderFilter(authservID string, out io.Writer) *headerFilter {
	return &headerFilter{id: strings.ToLower(authservID), out: out, inHeader: true}
}

func (f *headerFilter) write(p []byte) {
	if f.err != nil || len(p) == 0 {
		return
	}
	if _, err := f.out.Write(p); err != nil {
		f.err = err
	}
}

// Write implements io.Writer. Its error is the first of out's.
func (f *headerFilter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && f.inHeader {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.line = append(f.line, p...)
			if len(f.line) > maxField {
				f.flushField()
				f.passing = true
				f.write(f.line)
				f.line = f.line[:0]
			}
			return n, f.err
		}
		f.line = append(f.line, p[:i+1]...)
		p = p[i+1:]
		f.endLine()
	}
	f.write(p)
	return n, f.err
}

// endLine handles one whole line of the header section.
func (f *headerFilter) endLine() {
	line := f.line
	f.line = nil
	if f.header.Len() < maxHeader {
		f.header.Write(line)
	}
	cont := len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
	blank := len(bytes.TrimRight(line, "\r\n")) == 0
	if cont && !blank {
		if f.passing {
			f.write(line)
			return
		}
		f.field = append(f.field, line...)
		if len(f.field) > maxField {
			f.write(f.field)
			f.field, f.passing = nil, true
		}
		return
	}
	f.flushField()
	f.passing = false
	if blank {
		f.write(line)
		f.inHeader = false
		f.ended()
		return
	}
	f.field = append(f.field[:0], line...)
}

// flushField passes the field held on, or drops it when it is a forged
// Authentication-Results.
func (f *headerFilter) flushField() {
	if len(f.field) == 0 {
		return
	}
	if f.ours(f.field) {
		f.removed++
	} else {
		f.write(f.field)
	}
	f.field = f.field[:0]
}

// ours reports whether field is an Authentication-Results with our id.
func (f *headerFilter) ours(field []byte) bool {
	name, value, ok := bytes.Cut(field, []byte(":"))
	if !ok || !strings.EqualFold(strings.TrimSpace(string(name)), "Authentication-Results") {
		return false
	}
	return strings.EqualFold(authservID(string(value)), f.id)
}

// close ends the message: a header section without a body (or without
// its final CRLF) is flushed.
func (f *headerFilter) close() {
	if !f.inHeader {
		return
	}
	if len(f.line) > 0 {
		f.endLine()
	}
	f.flushField()
	f.inHeader = false
	f.ended()
}

func (f *headerFilter) ended() {
	if f.onEnd != nil {
		f.onEnd(f.header.Bytes())
		f.onEnd = nil
	}
}

// hasField reports whether the header section raw has a field name.
func hasField(raw []byte, name string) bool {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if n, _, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(strings.TrimSpace(string(n)), name) {
			return true
		}
	}
	return false
}

// authservID is the authserv-id at the start of an Authentication-Results
// value (RFC 8601 §2.2: [CFWS] authserv-id [CFWS version] ";" ...).
func authservID(v string) string {
	v = skipCFWS(strings.NewReplacer("\r", "", "\n", "").Replace(v))
	end := strings.IndexAny(v, "; \t(")
	if end < 0 {
		end = len(v)
	}
	return v[:end]
}

// skipCFWS drops leading blanks and comments (nested, RFC 5322 §3.2.2).
func skipCFWS(v string) string {
	for {
		v = strings.TrimLeft(v, " \t")
		if !strings.HasPrefix(v, "(") {
			return v
		}
		depth := 0
		i := 0
		for ; i < len(v); i++ {
			switch v[i] {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if i >= len(v) {
			return ""
		}
		v = v[i+1:]
	}
}
