package summary

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// The parse: one pass over the message, line by line, that knows at every
// line where it is (the octet offset and the number of LFs before it), so
// that each part records where its header and body begin and end.
//
// RFC 2046 §5.1.1: a boundary delimiter line is "--" boundary, optionally
// followed by white space; the close delimiter has "--" after the
// boundary. "The CRLF preceding the boundary delimiter line is conceptually
// attached to the boundary": a part's body ends before it. A delimiter of
// an enclosing multipart also ends every part inside it (a multipart left
// unclosed). go-message's multipart reader, which go-imap's own extraction
// uses, draws the same lines, so sizes and line counts agree with it for
// well-formed messages.

// lineBuffer is the read buffer; longer lines are read in pieces.
const lineBuffer = 32 << 10

// lineReader reads lines and counts octets and LFs.
type lineReader struct {
	br   *bufio.Reader
	off  int64 // offset of the next octet
	nl   int64 // LFs before off
	last int   // the line end's length of the last line read
	prev int   // and of the line before it
}

// newLineReader reads r through a buffer of lineBuffer octets, or of the
// message's size when r tells it and it is smaller: a 4 KiB message
// summarized at delivery allocated 64 KiB here (this buffer and drain's),
// the largest allocation of a delivery.
func newLineReader(r io.Reader, size int64) *lineReader {
	n := lineBuffer
	if size >= 0 && size < lineBuffer {
		n = max(int(size)+1, 16) // +1: the read that sees the end
	}
	return &lineReader{br: bufio.NewReaderSize(r, n)}
}

// line is one line of the message.
type line struct {
	start int64  // offset of its first octet
	nl    int64  // LFs before it
	text  []byte // its first octets (at most the limit next was given), line end included
	n     int64  // its length, line end included
	eol   int    // the length of its line end: 2 (CRLF), 1 (LF) or 0 (the last line, unterminated)
}

// content is the line without its line end (as far as text has it).
func (l *line) content() []byte {
	t := l.text
	if int64(len(t)) == l.n {
		t = t[:len(t)-l.eol]
	}
	return t
}

// next reads the next line, keeping at most limit octets of it in
// buf[:0] (reused); io.EOF when no octet is left.
func (r *lineReader) next(buf []byte, limit int) (line, []byte, error) {
	l := line{start: r.off, nl: r.nl}
	buf = buf[:0]
	var before byte // the octet before the last one read
	for {
		chunk, err := r.br.ReadSlice('\n')
		if room := limit - len(buf); room > 0 {
			buf = append(buf, chunk[:min(len(chunk), room)]...)
		}
		switch {
		case len(chunk) > 1:
			before = chunk[len(chunk)-2]
		case len(chunk) == 1 && l.n > 0:
			// before is the last octet of the previous piece
		}
		l.n += int64(len(chunk))
		r.off += int64(len(chunk))
		if errors.Is(err, bufio.ErrBufferFull) {
			before = chunk[len(chunk)-1]
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return l, buf, err
		}
		if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
			r.nl++
			l.eol = 1
			if before == '\r' && l.n > 1 {
				l.eol = 2
			}
		}
		if l.n == 0 {
			return l, buf, io.EOF
		}
		l.text = buf
		r.prev, r.last = r.last, l.eol
		return l, buf, nil
	}
}

// drain reads the rest of the message, counting it, through the reader's
// own buffer.
func (r *lineReader) drain() error {
	for {
		if r.br.Buffered() == 0 {
			if _, err := r.br.Peek(1); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
		}
		b, _ := r.br.Peek(r.br.Buffered())
		r.off += int64(len(b))
		r.nl += int64(bytes.Count(b, []byte{'\n'}))
		if _, err := r.br.Discard(len(b)); err != nil {
			return err
		}
	}
}

// delimiter is a boundary delimiter line that ended a scan.
type delimiter struct {
	level int // the index of its boundary in parser.bounds
	close bool
	line  line
}

// parser is the state of one parse.
type parser struct {
	lr     *lineReader
	parts  int
	bounds []string // the boundaries of the enclosing multiparts, outermost first
	// floors[i] is where the body of the part of multipart bounds[i] being
	// read begins (its preamble's, before the first delimiter).
	floors []int64
	buf    []byte
	// pending is the delimiter line that ended the last scan, which the
	// multipart it belongs to has not consumed yet.
	pending *delimiter
}

// match reports which enclosing boundary's delimiter line l is (innermost
// first).
func (p *parser) match(l *line) *delimiter {
	c := l.content()
	if len(c) < 3 || c[0] != '-' || c[1] != '-' {
		return nil
	}
	for i := len(p.bounds) - 1; i >= 0; i-- {
		b := p.bounds[i]
		if !bytes.HasPrefix(c[2:], []byte(b)) {
			continue
		}
		rest := c[2+len(b):]
		close := bytes.HasPrefix(rest, []byte("--"))
		if close {
			rest = rest[2:]
		}
		if len(bytes.Trim(rest, " \t")) == 0 {
			return &delimiter{level: i, close: close, line: *l}
		}
	}
	return nil
}

// limit is how much of a body line is kept: enough for any delimiter.
func (p *parser) limit() int {
	n := 0
	for _, b := range p.bounds {
		n = max(n, len(b))
	}
	return n + 8
}

// scan reads content up to the next delimiter of an enclosing multipart
// (returned, and left pending) or the end of the message (nil), and
// returns where the content ends and the LFs before that end; the content
// is of a part whose body begins at floor (or later: the part of the
// innermost multipart).
func (p *parser) scan(floor int64) (end, endNL int64, d *delimiter, err error) {
	if len(p.bounds) == 0 {
		if err := p.lr.drain(); err != nil {
			return 0, 0, nil, err
		}
		return p.lr.off, p.lr.nl, nil, nil
	}
	for {
		var l line
		l, p.buf, err = p.lr.next(p.buf, p.limit())
		if errors.Is(err, io.EOF) {
			// An unclosed multipart: the end of the message ends it as a
			// delimiter would.
			end, endNL = p.cut(p.lr.off, p.lr.nl, p.lr.last, max(floor, p.floors[len(p.floors)-1]))
			return end, endNL, nil, nil
		}
		if err != nil {
			return 0, 0, nil, err
		}
		if d := p.match(&l); d != nil {
			p.pending = d
			end, endNL = p.cut(l.start, l.nl, p.lr.prev, max(floor, p.floors[len(p.floors)-1]))
			return end, endNL, d, nil
		}
	}
}

// cut is where content ends that a delimiter line at offset at (with nl
// LFs before it) ends: before the line end eol in front of it, which is
// the delimiter's, unless that line end is not in the body of the part
// being read, the innermost, whose body begins at floor (the part is then
// empty: a delimiter right after its header).
func (p *parser) cut(at, nl int64, eol int, floor int64) (int64, int64) {
	if eol > 0 && at-int64(eol) >= floor {
		return at - int64(eol), nl - 1
	}
	return at, nl
}

// message reads a header section and the body that follows it: a whole
// message, or the content of a message/rfc822 part.
func (p *parser) message(depth int) (*Summary, error) {
	start := p.lr.off
	h, err := p.header()
	if err != nil {
		return nil, err
	}
	body, err := p.part(h, depth, start)
	if err != nil {
		return nil, err
	}
	// The Date field is parsed here (envelopeDate) and not by
	// ExtractEnvelope: h is not used after this.
	date := h.Get("Date")
	h.Del("Date")
	env := imapserver.ExtractEnvelope(h)
	env.Date = envelopeDate(date)
	return &Summary{Envelope: env, Body: body}, nil
}

// header reads a header section of at most MaxHeaderBytes (the rest of a
// longer one is skipped up to its end): up to and including the blank
// line after it, or up to a delimiter line or the end of the message.
func (p *parser) header() (textproto.Header, error) {
	var buf bytes.Buffer
	var lb []byte
	for {
		if p.pending != nil {
			break
		}
		l, b, err := p.lr.next(lb, max(MaxHeaderBytes-buf.Len(), p.limit()))
		lb = b
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return textproto.Header{}, err
		}
		if d := p.match(&l); d != nil {
			p.pending = d
			break
		}
		if int64(len(l.text)) == l.n && buf.Len()+len(l.text) <= MaxHeaderBytes {
			buf.Write(l.text)
		}
		if len(l.content()) == 0 && int64(len(l.text)) == l.n {
			break
		}
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n\n")) && !bytes.HasSuffix(buf.Bytes(), []byte("\r\n\r\n")) {
		buf.WriteString("\r\n\r\n")
	}
	// A buffer the header's size (4 KiB at most, bufio's default): the
	// reader needs no more, and one is made for every message.
	h, err := textproto.ReadHeader(bufio.NewReaderSize(&buf, min(max(buf.Len(), 16), 4096)))
	if err != nil {
		// A malformed header is a message without fields, not an error.
		return textproto.Header{}, nil
	}
	return h, nil
}

// part reads the body of a part whose header h began at start, to its
// end (a delimiter of an enclosing multipart, left pending, or the end of
// the message).
func (p *parser) part(h textproto.Header, depth int, start int64) (*Part, error) {
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
		Start:       start,
		BodyStart:   p.lr.off,
	}
	if p.pending != nil {
		// The header ended at a delimiter: no body.
		out.BodyStart = p.pending.line.start
	}
	if d, dp, err := header.ContentDisposition(); err == nil && d != "" {
		out.Disposition, out.DispParams = d, dp
	}
	if v := h.Get("Content-Language"); v != "" {
		for _, l := range strings.Split(v, ",") {
			out.Language = append(out.Language, strings.TrimSpace(l))
		}
	}
	bodyNL := p.lr.nl
	deeper := depth < MaxDepth && p.parts < MaxParts
	isMessage := mediaType == "message/rfc822" || mediaType == "message/global"
	switch {
	case p.pending != nil:
		out.End, out.endNL = out.BodyStart, p.pending.line.nl
		if typ == "multipart" {
			out.Children = []*Part{emptyPart(out.End, out.endNL)}
		}
		return out, nil
	case typ == "multipart" && deeper && params["boundary"] != "":
		if err := p.multipart(out, params["boundary"], depth); err != nil {
			return nil, err
		}
	case isMessage && deeper:
		inner, err := p.message(depth + 1)
		if err != nil {
			return nil, err
		}
		out.Message = inner
		out.End, out.endNL = inner.Body.End, inner.Body.endNL
		out.Size = out.End - out.BodyStart
		out.Lines = out.endNL - bodyNL
	default:
		end, endNL, _, err := p.scan(out.BodyStart)
		if err != nil {
			return nil, err
		}
		out.End, out.endNL, out.Size = end, endNL, end-out.BodyStart
		if typ == "text" || isMessage {
			out.Lines = endNL - bodyNL
		}
		out.Opaque = (typ == "multipart" && params["boundary"] != "") || isMessage
		if typ == "multipart" {
			// RFC 9051 §7.5.2: a multipart has at least one part.
			out.Children = []*Part{emptyPart(out.End, out.endNL)}
		}
	}
	return out, nil
}

// multipart reads the body of multipart part out with boundary: the
// preamble, each part (at most MaxParts in all), the epilogue.
func (p *parser) multipart(out *Part, boundary string, depth int) error {
	p.bounds = append(p.bounds, boundary)
	p.floors = append(p.floors, out.BodyStart)
	level := len(p.bounds) - 1
	defer func() { p.bounds, p.floors = p.bounds[:level], p.floors[:level] }()
	end, endNL, d, err := p.scan(out.BodyStart) // the preamble
	for err == nil {
		switch {
		case d == nil && level == 0:
			out.End, out.endNL = p.lr.off, p.lr.nl
		case d == nil:
			// The end of the message ends the enclosing multipart too
			// (not before what the last part took).
			out.End, out.endNL = p.cut(p.lr.off, p.lr.nl, p.lr.last, p.floors[level-1])
			if out.End < end {
				out.End, out.endNL = end, endNL
			}
		case d.level < level:
			// The end of an enclosing multipart's part.
			out.End, out.endNL = end, endNL
		case d.close:
			p.pending = nil
			// The epilogue, up to the enclosing multipart's delimiter.
			p.bounds, p.floors = p.bounds[:level], p.floors[:level]
			end, endNL, _, err = p.scan(0)
			p.bounds, p.floors = append(p.bounds, boundary), append(p.floors, 0)
			out.End, out.endNL = end, endNL
		default:
			p.pending = nil
			p.floors[level] = p.lr.off
			if p.parts >= MaxParts {
				out.Opaque = true
				end, endNL, d, err = p.scan(p.lr.off)
				continue
			}
			start := p.lr.off
			var h textproto.Header
			if h, err = p.header(); err != nil {
				return err
			}
			p.floors[level] = p.lr.off
			if p.pending != nil {
				p.floors[level] = p.pending.line.start
			}
			var c *Part
			if c, err = p.part(h, depth+1, start); err != nil {
				return err
			}
			out.Children = append(out.Children, c)
			end, endNL, d = c.End, c.endNL, p.pending
			continue
		}
		break
	}
	if err != nil {
		return err
	}
	if len(out.Children) == 0 {
		// RFC 9051 §7.5.2: a multipart has at least one part.
		out.Children = []*Part{emptyPart(out.End, out.endNL)}
	}
	return nil
}

// emptyPart is the text/plain part a multipart without parts shows
// (empty, at the multipart's end).
func emptyPart(at, nl int64) *Part {
	return &Part{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}, Start: at, BodyStart: at, End: at, endNL: nl}
}

// crlfCounter counts the octets of a message as they would be with CRLF
// line ends (Summary.CRLFSize).
type crlfCounter struct {
	n    int64
	last byte // the last octet seen (0 before any)
	any  bool
}

func (c *crlfCounter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	prev := c.last
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		k := i + j
		before := prev
		if k > 0 {
			before = b[k-1]
		}
		if before != '\r' {
			c.n++
		}
		i = k + 1
	}
	if len(b) > 0 {
		c.last, c.any = b[len(b)-1], true
	}
	return len(b), nil
}

// size is the count, with a line end added to an unterminated last line
// (LF after a CR, CRLF otherwise).
func (c *crlfCounter) size() int64 {
	switch {
	case !c.any || c.last == '\n':
		return c.n
	case c.last == '\r':
		return c.n + 1
	}
	return c.n + 2
}
