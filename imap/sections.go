package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/summary"
)

// FETCH of body sections (RFC 9051 §6.4.5) reads only their octets.
//
// The stored summary says where every part's header and body are in the
// message (summary.Section), so BODY[HEADER], BODY[1.2.MIME], BODY[TEXT],
// BODY[2] and their partial ranges are read from the owner as those
// ranges, in pieces, streamed to the client; HEADER.FIELDS reads the
// header only; BINARY decodes the part's body as it reads it (twice: once
// to count the literal's length, once to send it). A summary stored
// before the offsets existed is computed again by reading the message
// once (streaming); only a section inside a part too deep to have been
// split (summary.MaxDepth, MaxParts) reads the message whole, as go-imap
// extracts it. RFC822.SIZE and BODYSTRUCTURE come from the summary and the
// message record, never from the message.

// maxHeaderRead bounds what HEADER.FIELDS reads of a header section.
const maxHeaderRead = 1 << 20

// storedMessage is a message a FETCH reads from its owner.
type storedMessage struct {
	ss   *session
	id   string
	size int64
	raw  []byte // the summary, as the owner sent it
	sum  *summary.Summary
}

func (ss *session) stored(e *pb.MessageEntry) *storedMessage {
	return &storedMessage{ss: ss, id: fmt.Sprint(e.Id), size: e.Size, raw: e.Summary}
}

// summary is the message's summary with its offsets: the stored one, or
// one computed by reading the message (a summary stored before them).
func (m *storedMessage) summary() (*summary.Summary, error) {
	if m.sum != nil {
		return m.sum, nil
	}
	s, err := summary.Decode(m.raw)
	if err != nil || s.Version < summary.Version {
		if s, err = summary.Compute(m.reader(0, m.size)); err != nil {
			return nil, imapError(err)
		}
	}
	m.sum = s
	return s, nil
}

// reader reads [off, end) of the message from the owner in pieces.
func (m *storedMessage) reader(off, end int64) io.Reader {
	return &pieceReader{m: m, off: off, end: end}
}

type pieceReader struct {
	m        *storedMessage
	off, end int64
	buf      []byte
	err      error
}

func (r *pieceReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.off >= r.end {
			return 0, io.EOF
		}
		ss := r.m.ss
		ctx, cancel := ss.opCtx()
		b, _, err := ss.s.backend.ReadMessage(ctx, ss.loggedIn(), r.m.id, r.off, int(min(r.end-r.off, piece)), false)
		cancel()
		switch {
		case err != nil:
			r.err = fmt.Errorf("imap: reading message %s at %d: %w", r.m.id, r.off, err)
		case len(b) == 0:
			r.err = fmt.Errorf("imap: message %s ended at %d, before %d", r.m.id, r.off, r.end)
		}
		b = b[:min(int64(len(b)), r.end-r.off)]
		r.buf, r.off = b, r.off+int64(len(b))
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// readRange reads [off, end) whole (a header, at most maxHeaderRead).
func (m *storedMessage) readRange(off, end int64) ([]byte, error) {
	b, err := io.ReadAll(m.reader(off, end))
	if err != nil {
		return nil, imapError(err)
	}
	return b, nil
}

// partial is the range [off, off+n) of a section of length octets that a
// partial FETCH asks for (all of it without one; an offset past its end
// is nothing, as go-imap has it).
func partial(p *imap.SectionPartial, length int64) (off, n int64) {
	if p == nil {
		return 0, length
	}
	if p.Offset > length {
		return 0, 0
	}
	return p.Offset, min(p.Size, length-p.Offset)
}

// writeBodySection answers BODY[section]<partial>.
func (ss *session) writeBodySection(rw *imapserver.FetchResponseWriter, bs *imap.FetchItemBodySection, m *storedMessage) error {
	if bs.Specifier == imap.PartSpecifierNone && len(bs.Part) == 0 {
		// BODY[]: the owner checks the whole message before its first
		// piece, so a damaged one fails before any byte is promised.
		return ss.streamBody(rw, bs, m.id, m.size)
	}
	s, err := m.summary()
	if err != nil {
		return err
	}
	start, end, ok := s.Section(bs.Part, bs.Specifier)
	if !ok {
		return ss.wholeSection(rw, bs, m)
	}
	if len(bs.HeaderFields) > 0 || len(bs.HeaderFieldsNot) > 0 {
		head, err := m.readRange(start, min(end, start+maxHeaderRead))
		if err != nil {
			return err
		}
		out := imapserver.ExtractBodySection(bytes.NewReader(endHeader(head)), &imap.FetchItemBodySection{
			Specifier: imap.PartSpecifierHeader, HeaderFields: bs.HeaderFields, HeaderFieldsNot: bs.HeaderFieldsNot, Partial: bs.Partial})
		return writeLiteral(rw.WriteBodySection(bs, int64(len(out))), out)
	}
	off, n := partial(bs.Partial, end-start)
	wc := rw.WriteBodySection(bs, n)
	if _, err := io.CopyBuffer(wc, m.reader(start+off, start+off+n), make([]byte, 32<<10)); err != nil {
		// The literal's length is promised: the connection cannot go on.
		ss.s.log.Warn("imap fetch: reading a section failed", "account", ss.loggedIn(), "id", m.id, "err", err)
		_ = wc.Close()
		return err
	}
	return wc.Close()
}

// endHeader makes a header section end with its blank line (one cut off
// at the end of the message has none).
func endHeader(h []byte) []byte {
	switch {
	case bytes.HasSuffix(h, []byte("\n\n")) || bytes.HasSuffix(h, []byte("\r\n\r\n")):
		return h
	case bytes.HasSuffix(h, []byte("\n")):
		return append(h, "\r\n"...)
	}
	return append(h, "\r\n\r\n"...)
}

func writeLiteral(wc io.WriteCloser, b []byte) error {
	if _, err := wc.Write(b); err != nil {
		return err
	}
	return wc.Close()
}

// wholeSection is the fallback for a section the summary cannot place (a
// part beyond summary.MaxDepth or MaxParts): the message is read whole
// and go-imap cuts the section out.
func (ss *session) wholeSection(rw *imapserver.FetchResponseWriter, bs *imap.FetchItemBodySection, m *storedMessage) error {
	raw, err := ss.readAll(m.id, m.size)
	if err != nil {
		return err
	}
	out := imapserver.ExtractBodySection(bytes.NewReader(raw), bs)
	return writeLiteral(rw.WriteBodySection(bs, int64(len(out))), out)
}

// binaryPart finds a part for BINARY (RFC 3516): its header (written
// before the body for the whole message) and its body's range, and the
// Content-Transfer-Encoding to undo. ok is false when the summary cannot
// place it.
func (m *storedMessage) binaryPart(part []int) (head []byte, start, end int64, cte string, ok bool, err error) {
	s, err := m.summary()
	if err != nil {
		return nil, 0, 0, "", false, err
	}
	hs, he, ok1 := s.Section(part, imap.PartSpecifierMIME)
	bs, be, ok2 := s.Section(part, imap.PartSpecifierNone)
	if len(part) == 0 {
		hs, he, ok1 = s.Section(nil, imap.PartSpecifierHeader)
		bs, be, ok2 = s.Section(nil, imap.PartSpecifierText)
	}
	if !ok1 || !ok2 {
		return nil, 0, 0, "", false, nil
	}
	if head, err = m.readRange(hs, min(he, hs+maxHeaderRead)); err != nil {
		return nil, 0, 0, "", false, err
	}
	h, herr := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(endHeader(head))))
	if herr == nil {
		cte = h.Get("Content-Transfer-Encoding")
	}
	return head, bs, be, cte, true, nil
}

// decoder undoes a Content-Transfer-Encoding (RFC 2045 §6); an unknown
// one is NO [UNKNOWN-CTE] (RFC 3516 §4.3).
func decoder(cte string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return r, nil
	case "quoted-printable":
		return quotedprintable.NewReader(r), nil
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &base64Filter{r: r}), nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnknownCTE, Text: "Unknown Content-Transfer-Encoding"}
}

// base64Filter drops what is not base64 (line ends, white space: RFC
// 2045 §6.8 says to ignore them).
type base64Filter struct{ r io.Reader }

func (f *base64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		k := 0
		for _, c := range p[:n] {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
				p[k] = c
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// binarySection streams the decoded section (header first for the whole
// message) to w, or counts it (w nil); partial cuts it.
func (m *storedMessage) binarySection(w io.Writer, part []int, p *imap.SectionPartial) (int64, bool, error) {
	head, start, end, cte, ok, err := m.binaryPart(part)
	if err != nil || !ok {
		return 0, ok, err
	}
	body, err := decoder(cte, m.reader(start, end))
	if err != nil {
		return 0, true, err
	}
	var r io.Reader = body
	if len(part) == 0 {
		r = io.MultiReader(bytes.NewReader(head), body)
	}
	if p != nil {
		if _, err := io.CopyN(io.Discard, r, p.Offset); err != nil && err != io.EOF {
			return 0, true, imapError(err)
		}
		r = io.LimitReader(r, p.Size)
	}
	if w == nil {
		w = io.Discard
	}
	n, err := io.CopyBuffer(w, r, make([]byte, 32<<10))
	if err != nil {
		return n, true, imapError(err)
	}
	return n, true, nil
}

// writeBinarySection answers BINARY[part]<partial>: decoded once to count
// it, once to send it.
func (ss *session) writeBinarySection(rw *imapserver.FetchResponseWriter, bs *imap.FetchItemBinarySection, m *storedMessage) error {
	n, ok, err := m.binarySection(nil, bs.Part, bs.Partial)
	if err != nil {
		return err
	}
	if !ok {
		raw, err := ss.readAll(m.id, m.size)
		if err != nil {
			return err
		}
		out := imapserver.ExtractBinarySection(bytes.NewReader(raw), bs)
		return writeLiteral(rw.WriteBinarySection(bs, int64(len(out))), out)
	}
	wc := rw.WriteBinarySection(bs, n)
	got, _, err := m.binarySection(wc, bs.Part, bs.Partial)
	if err == nil && got != n {
		err = fmt.Errorf("imap: message %s: BINARY decoded to %d octets, then %d", m.id, n, got)
	}
	if err != nil {
		_ = wc.Close()
		return err
	}
	return wc.Close()
}

// binarySize answers BINARY.SIZE[part].
func (ss *session) binarySize(m *storedMessage, bss *imap.FetchItemBinarySectionSize) (uint32, error) {
	n, ok, err := m.binarySection(nil, bss.Part, nil)
	if err != nil {
		return 0, err
	}
	if !ok {
		raw, err := ss.readAll(m.id, m.size)
		if err != nil {
			return 0, err
		}
		return imapserver.ExtractBinarySectionSize(bytes.NewReader(raw), bss), nil
	}
	return uint32(min(n, int64(^uint32(0)))), nil
}
