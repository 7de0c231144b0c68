// Package summary computes, once when a message is stored, what IMAP asks
// of a message without its bytes: the envelope (RFC 9051 §7.5.2, ENVELOPE)
// and the body structure (BODYSTRUCTURE), and encodes them compactly for
// the mailbox store. FETCH ENVELOPE and BODYSTRUCTURE, and the admin
// listing's From and Subject, read the stored summary instead of parsing the
// message again.
//
// Parsing streams: a body of any size is read once, holding at most one
// header section (MaxHeaderBytes) and a small buffer; nesting and the number
// of parts are bounded (MaxDepth, MaxParts), beyond which the rest of a part
// counts as its opaque content.
package summary

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
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

// Summary is a message's envelope and body structure.
type Summary struct {
	Envelope *imap.Envelope `json:"e"`
	Body     *Part          `json:"b"`
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
}

// Compute reads a whole message from r and returns its summary.
func Compute(r io.Reader) (*Summary, error) {
	p := &parser{}
	br := bufio.NewReaderSize(r, 32<<10)
	s, err := p.message(br, 0)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Encode is s as stored.
func (s *Summary) Encode() ([]byte, error) { return json.Marshal(s) }

// Decode reads a stored summary.
func Decode(b []byte) (*Summary, error) {
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
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

type parser struct {
	parts int
}

// message reads a header section and the body that follows it.
func (p *parser) message(br *bufio.Reader, depth int) (*Summary, error) {
	h, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	body, err := p.part(h, br, depth)
	if err != nil {
		return nil, err
	}
	return &Summary{Envelope: imapserver.ExtractEnvelope(h), Body: body}, nil
}

// readHeader reads a header section of at most MaxHeaderBytes (the rest
// of a longer one is skipped up to its end).
func readHeader(br *bufio.Reader) (textproto.Header, error) {
	var buf bytes.Buffer
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: keep what fits, skip the rest.
			if buf.Len()+len(line) <= MaxHeaderBytes {
				buf.Write(line)
			}
			continue
		}
		if buf.Len()+len(line) <= MaxHeaderBytes {
			buf.Write(line)
		}
		if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				return textproto.Header{}, err
			}
			break
		}
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n\n")) && !bytes.HasSuffix(buf.Bytes(), []byte("\r\n\r\n")) {
		buf.WriteString("\r\n\r\n")
	}
	h, err := textproto.ReadHeader(bufio.NewReader(&buf))
	if err != nil {
		// A malformed header is a message without fields, not an error.
		return textproto.Header{}, nil
	}
	return h, nil
}

// counter counts bytes and lines written to it.
type counter struct{ bytes, lines int64 }

func (c *counter) Write(b []byte) (int, error) {
	c.bytes += int64(len(b))
	c.lines += int64(bytes.Count(b, []byte{'\n'}))
	return len(b), nil
}

// part reads the body of a part whose header is h from r, to its end.
func (p *parser) part(h textproto.Header, r io.Reader, depth int) (*Part, error) {
	p.parts++
	header := gomessage.Header{Header: h}
	mediaType, params, _ := header.ContentType()
	if mediaType == "" {
		mediaType, params = "text/plain", map[string]string{"charset": "us-ascii"}
	}
	typ, sub, _ := strings.Cut(mediaType, "/")
	out := &Part{
		Type: typ, Subtype: sub, Params: params,
		ID:          h.Get("Content-Id"),
		Description: h.Get("Content-Description"),
		Encoding:    h.Get("Content-Transfer-Encoding"),
		Location:    h.Get("Content-Location"),
	}
	if d, dp, err := header.ContentDisposition(); err == nil && d != "" {
		out.Disposition, out.DispParams = d, dp
	}
	if v := h.Get("Content-Language"); v != "" {
		for _, l := range strings.Split(v, ",") {
			out.Language = append(out.Language, strings.TrimSpace(l))
		}
	}
	deeper := depth < MaxDepth && p.parts < MaxParts
	switch {
	case typ == "multipart" && deeper && params["boundary"] != "":
		mr := textproto.NewMultipartReader(r, params["boundary"])
		for p.parts < MaxParts {
			child, err := mr.NextPart()
			if err != nil {
				break
			}
			c, err := p.part(child.Header, child, depth+1)
			if err != nil {
				return nil, err
			}
			out.Children = append(out.Children, c)
		}
		// Whatever follows (the epilogue, parts beyond MaxParts) is read
		// to its end, so that the caller sees the whole part consumed.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, err
		}
		if len(out.Children) == 0 {
			// RFC 9051 §7.5.2: a multipart has at least one part.
			out.Children = []*Part{{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}}}
		}
	case (mediaType == "message/rfc822" || mediaType == "message/global") && deeper:
		c := &counter{}
		br := bufio.NewReaderSize(io.TeeReader(r, c), 4096)
		inner, err := p.message(br, depth+1)
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(io.Discard, br); err != nil {
			return nil, err
		}
		out.Message, out.Size, out.Lines = inner, c.bytes, c.lines
	default:
		c := &counter{}
		if _, err := io.Copy(c, r); err != nil {
			return nil, err
		}
		out.Size = c.bytes
		if typ == "text" {
			out.Lines = c.lines
		}
	}
	return out, nil
}
