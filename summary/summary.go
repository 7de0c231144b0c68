// Package summary computes, once when a message is stored, what IMAP asks
// of a message without its bytes: the envelope (RFC 9051 §7.5.2, ENVELOPE)
// and the body structure (BODYSTRUCTURE), and encodes them compactly for
// the mailbox store. FETCH ENVELOPE and BODYSTRUCTURE, and the admin
// listing's From and Subject, read the stored summary instead of parsing the
// message again.
//
// Parsing streams (parse.go): a body of any size is read once, holding at
// most one header section (MaxHeaderBytes) and a small buffer; nesting and
// the number of parts are bounded (MaxDepth, MaxParts), beyond which the
// rest of a part counts as its opaque content. Every part records where
// its header and its body begin and end in the message, so that FETCH of
// BODY[HEADER], BODY[1.2.MIME], BODY[TEXT] or a partial range reads only
// those octets (section.go); and the summary records the message's size
// with CRLF line ends, which is what POP3 sends (RFC 1939 §11).
package summary

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/emersion/go-imap/v2"
)

// Bounds of the parse.
const (
	// MaxHeaderBytes is the most of one header section that is read;
	// fields beyond it are ignored.
	MaxHeaderBytes = 256 << 10
	// MaxDepth is the deepest nesting of multiparts and message/rfc822
	// parts that is parsed into parts.
	MaxDepth = 16
	// MaxParts is the most parts one message is split into.
	MaxParts = 1000
)

// Version is the version of the summaries Compute makes: 1 has the
// parts' offsets and CRLFSize. A stored summary of version 0 (made before)
// has neither; Section then says so and the caller computes them again.
const Version = 1

// Summary is a message's envelope and body structure.
type Summary struct {
	Envelope *imap.Envelope `json:"e"`
	Body     *Part          `json:"b"`
	// Version is that of Compute when it was made (of the message's
	// summary only; 0 in the summary of a message/rfc822 part).
	Version int `json:"v,omitempty"`
	// CRLFSize is the message's size with CRLF line ends: every bare LF
	// counted as CRLF, and an unterminated last line ended (RFC 1939
	// §11: what POP3's RETR sends before dot-stuffing).
	CRLFSize int64 `json:"w,omitempty"`
}

// Part is one node of a body structure (imap.BodyStructure in a form that
// encodes as JSON).
type Part struct {
	Type        string            `json:"t"`
	Subtype     string            `json:"s"`
	Params      map[string]string `json:"p,omitempty"`
	ID          string            `json:"id,omitempty"`
	Description string            `json:"d,omitempty"`
	Encoding    string            `json:"c,omitempty"`
	Size        int64             `json:"z,omitempty"`
	Lines       int64             `json:"l,omitempty"`
	Children    []*Part           `json:"k,omitempty"`
	// Message is the envelope and structure of a message/rfc822 part.
	Message     *Summary          `json:"m,omitempty"`
	Disposition string            `json:"x,omitempty"`
	DispParams  map[string]string `json:"xp,omitempty"`
	Language    []string          `json:"g,omitempty"`
	Location    string            `json:"o,omitempty"`
	// Where the part is in the message (octet offsets from its start):
	// its header begins at Start, its body at BodyStart (after the blank
	// line), and the body ends at End (before the line end that precedes
	// the next boundary, RFC 2046 §5.1.1). The message itself is the part
	// with Start 0 whose End is the message's size.
	Start     int64 `json:"hs,omitempty"`
	BodyStart int64 `json:"bs,omitempty"`
	End       int64 `json:"be,omitempty"`
	// Opaque: the part's content was not split (beyond MaxDepth or
	// MaxParts): a multipart without Children, a message/rfc822 without
	// Message, though it has them.
	Opaque bool `json:"q,omitempty"`

	endNL int64 // the LFs before End (while parsing)
}

// Compute reads a whole message from r and returns its summary.
func Compute(r io.Reader) (*Summary, error) {
	crlf := &crlfCounter{}
	p := &parser{lr: newLineReader(io.TeeReader(r, crlf), sizeOf(r))}
	s, err := p.message(0)
	if err != nil {
		return nil, err
	}
	s.Version, s.CRLFSize = Version, crlf.size()
	return s, nil
}

// sizeOf is how many octets r has left when it says (a bytes.Reader,
// strings.Reader, bytes.Buffer: Len; an io.SectionReader: Size, an upper
// bound), else -1.
func sizeOf(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case interface{ Size() int64 }:
		return v.Size()
	}
	return -1
}

// Encode is s as stored (binary.go).
func (s *Summary) Encode() ([]byte, error) { return encode(s) }

// Decode reads a stored summary, of either form (binary.go).
func Decode(b []byte) (*Summary, error) {
	var s Summary
	if isBinary(b) {
		env, rest, err := split(b)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(rest, &s); err != nil {
			return nil, fmt.Errorf("summary: %w", err)
		}
		if s.Envelope, err = decodeBinaryEnvelope(env); err != nil {
			return nil, err
		}
	} else if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	if s.Envelope == nil {
		s.Envelope = &imap.Envelope{}
	}
	if s.Body == nil {
		s.Body = &Part{Type: "text", Subtype: "plain"}
	}
	return &s, nil
}

// DecodeEnvelope decodes only the envelope of an encoded summary: FETCH
// ENVELOPE needs nothing else, and the body structure is then not built.
func DecodeEnvelope(b []byte) (*imap.Envelope, error) {
	if isBinary(b) {
		env, _, err := split(b)
		if err != nil {
			return nil, err
		}
		return decodeBinaryEnvelope(env)
	}
	var s struct {
		Envelope *imap.Envelope `json:"e"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	if s.Envelope == nil {
		s.Envelope = &imap.Envelope{}
	}
	return s.Envelope, nil
}

// From is the first From address as "Name <addr>" or "addr" ("" if none).
func (s *Summary) From() string {
	if s == nil || s.Envelope == nil || len(s.Envelope.From) == 0 {
		return ""
	}
	a := s.Envelope.From[0]
	if a.Name != "" {
		return a.Name + " <" + a.Addr() + ">"
	}
	return a.Addr()
}

// Subject is the decoded subject.
func (s *Summary) Subject() string {
	if s == nil || s.Envelope == nil {
		return ""
	}
	return s.Envelope.Subject
}
