package summary

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
)

// The stored form of a summary. A FETCH of ENVELOPE for every message of
// a large folder decodes one envelope per message, and decoding JSON was
// most of that FETCH's cost (encoding/json's validation pass reads the
// whole summary, body structure included, before it decodes the envelope;
// measured with the concurrent loop of make bench-imap: a third of the
// node's CPU). So the envelope is stored first, in a binary form read
// without reflection, and the rest (body structure, version, CRLF size)
// after it as JSON, which only Decode reads:
//
//	0x00 'H' 0x01                     magic (JSON never starts with 0x00)
//	uvarint n, then n bytes           the envelope (below)
//	the rest                          JSON of the Summary without Envelope
//
// The envelope: the date (a byte 0 for none, else 1 and then varint Unix
// seconds, uvarint nanoseconds, varint zone offset in seconds), the
// subject, six address lists (From, Sender, Reply-To, To, Cc, Bcc: a
// uvarint count, then name, mailbox and host of each), the In-Reply-To
// list (count, then each) and the Message-ID; a string is a uvarint
// length and its bytes. Summaries stored before this form (JSON from
// the first byte) decode as before.
const magic = "\x00H\x01"

// errShort: the encoded envelope ends before a field does.
var errShort = errors.New("summary: truncated envelope")

func encode(s *Summary) ([]byte, error) {
	rest := *s
	rest.Envelope = nil
	tail, err := json.Marshal(&rest)
	if err != nil {
		return nil, err
	}
	env := appendEnvelope(nil, s.Envelope)
	out := make([]byte, 0, len(magic)+binary.MaxVarintLen32+len(env)+len(tail))
	out = append(out, magic...)
	out = binary.AppendUvarint(out, uint64(len(env)))
	out = append(out, env...)
	return append(out, tail...), nil
}

// isBinary: b is in the form above.
func isBinary(b []byte) bool {
	return len(b) >= len(magic) && string(b[:len(magic)]) == magic
}

// split returns the envelope bytes and the JSON rest of a binary summary.
func split(b []byte) (env, rest []byte, err error) {
	b = b[len(magic):]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errShort
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendEnvelope(b []byte, e *imap.Envelope) []byte {
	if e == nil {
		e = &imap.Envelope{}
	}
	if e.Date.IsZero() {
		b = append(b, 0)
	} else {
		_, off := e.Date.Zone()
		b = append(b, 1)
		b = binary.AppendVarint(b, e.Date.Unix())
		b = binary.AppendUvarint(b, uint64(e.Date.Nanosecond()))
		b = binary.AppendVarint(b, int64(off))
	}
	b = appendString(b, e.Subject)
	for _, l := range [][]imap.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, a := range l {
			b = appendString(b, a.Name)
			b = appendString(b, a.Mailbox)
			b = appendString(b, a.Host)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(e.InReplyTo)))
	for _, s := range e.InReplyTo {
		b = appendString(b, s)
	}
	return appendString(b, e.MessageID)
}

// reader reads the fields of an encoded envelope; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errShort
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads a list's length, which cannot exceed the bytes left (every
// element takes at least one).
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errShort
		return 0
	}
	return int(n)
}

func decodeBinaryEnvelope(b []byte) (*imap.Envelope, error) {
	r := &reader{b: b}
	e := &imap.Envelope{}
	if len(r.b) == 0 {
		return nil, errShort
	}
	hasDate := r.b[0]
	r.b = r.b[1:]
	if hasDate == 1 {
		sec, nsec, off := r.varint(), r.uvarint(), r.varint()
		if nsec >= uint64(time.Second) || off < -24*3600 || off > 24*3600 {
			return nil, fmt.Errorf("summary: envelope date out of range")
		}
		e.Date = time.Unix(sec, int64(nsec)).In(time.FixedZone("", int(off)))
	}
	e.Subject = r.string()
	for _, l := range []*[]imap.Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc} {
		n := r.count()
		if n == 0 || r.err != nil {
			continue
		}
		*l = make([]imap.Address, n)
		for i := range *l {
			(*l)[i] = imap.Address{Name: r.string(), Mailbox: r.string(), Host: r.string()}
		}
	}
	if n := r.count(); n > 0 && r.err == nil {
		e.InReplyTo = make([]string, n)
		for i := range e.InReplyTo {
			e.InReplyTo[i] = r.string()
		}
	}
	e.MessageID = r.string()
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("summary: %d bytes after the envelope", len(r.b))
	}
	return e, nil
}
