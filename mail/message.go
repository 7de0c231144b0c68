package mail

import (
	"bytes"
	"io"
	"slices"
)

// Message is the one shape a message has on its way through Homing, from
// the SMTP session's DATA to the mailbox append or the relay: its envelope
// and a reference to its bytes. The Enqueuer takes a Message, the queue
// keeps it, and every delivery attempt is a Message whose envelope lists
// only the recipients attempted (For); Local Delivery carries it across the
// cluster channel, and the account actor stores it.
type Message struct {
	Envelope *Envelope
	Body     Body
}

// For returns the attempt of m for the recipients keys name: a Message
// with a copy of the envelope that holds only those recipients (in the
// envelope's order), sharing m's body. Unknown keys are ignored.
func (m *Message) For(keys ...int) *Message {
	want := make(map[int]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	env := m.Envelope.Clone()
	rcpts := env.Recipients[:0]
	for _, r := range env.Recipients {
		if want[r.Key] {
			rcpts = append(rcpts, r)
		}
	}
	env.Recipients = rcpts
	return &Message{Envelope: env, Body: m.Body}
}

// Body is the bytes of a message: the RFC 5322 header and body as stored,
// with the trace fields Homing added. A Body is never changed in place (a
// rule that adds header fields makes a new one with Prepend), so one Body
// may be shared by every attempt of a message and read concurrently.
type Body interface {
	// Size is the length in bytes.
	Size() int64
	// Open returns a reader of the bytes from the start. Each call
	// returns a new, independent reader.
	Open() (io.ReadCloser, error)
}

// BytesBody is a Body held in memory.
type BytesBody []byte

// Size implements Body.
func (b BytesBody) Size() int64 { return int64(len(b)) }

// Open implements Body.
func (b BytesBody) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }

// ReadBody returns the bytes of b (those of a BytesBody without a copy;
// the caller must not change them).
func ReadBody(b Body) ([]byte, error) {
	switch b := b.(type) {
	case nil:
		return nil, nil
	case BytesBody:
		return b, nil
	case *prefixed:
		rest, err := ReadBody(b.rest)
		if err != nil {
			return nil, err
		}
		return append(append(make([]byte, 0, len(b.head)+len(rest)), b.head...), rest...), nil
	}
	r, err := b.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := make([]byte, 0, b.Size())
	buf := bytes.NewBuffer(out)
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Head returns the start of b: its header section up to and including the
// empty line that ends it (RFC 5322 §2.1), or at most n bytes when the
// header is longer or does not end: enough of a message to parse its
// header section without reading its body. A body in memory is returned
// as it is, up to n bytes (no copy, the body included); a body in a file
// is read in pieces only until the header ends (for a 100 KiB message,
// reading all of it was 5% of the node's CPU: the rules, the journal and
// the account actor each read the header).
func Head(b Body, n int) ([]byte, error) {
	if bb, ok := b.(BytesBody); ok {
		if len(bb) > n {
			return bb[:n], nil
		}
		return bb, nil
	}
	r, err := b.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	buf := make([]byte, 0, min(n, headPiece))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), cap(buf)))
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), n)])
		from := max(0, len(buf)-2)
		buf = buf[:len(buf)+m]
		if end := headerEnd(buf, from); end >= 0 {
			return buf[:end], nil
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// headPiece is how much Head reads at first.
const headPiece = 8 << 10

// headerEnd returns the offset just past the empty line that ends the
// header section in p, looking from offset from on, or -1. A message that
// starts with an empty line has no header fields: the end is that line's.
func headerEnd(p []byte, from int) int {
	if from == 0 {
		switch {
		case bytes.HasPrefix(p, []byte("\r\n")):
			return 2
		case bytes.HasPrefix(p, []byte("\n")):
			return 1
		}
	}
	for i := from; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case bytes.HasPrefix(p[i:], []byte("\r\n")):
			return i + 2
		case bytes.HasPrefix(p[i:], []byte("\n")):
			return i + 1
		}
	}
}

// Prepend returns a Body that is head followed by b (header fields a rule
// or the account's delivery adds). A body in memory is copied once, here,
// so that every later reader gets plain bytes; any other is not copied.
func Prepend(head []byte, b Body) Body {
	switch rest := b.(type) {
	case nil:
		return BytesBody(append([]byte(nil), head...))
	case BytesBody:
		if len(head) == 0 {
			return b
		}
		return BytesBody(append(append(make([]byte, 0, len(head)+len(rest)), head...), rest...))
	}
	if len(head) == 0 {
		return b
	}
	if inner, ok := b.(*prefixed); ok {
		// One prefix, not a chain: a store keeps the prefix beside the
		// body it references (SplitPrefix).
		return &prefixed{head: append(append(make([]byte, 0, len(head)+len(inner.head)), head...), inner.head...), rest: inner.rest}
	}
	return &prefixed{head: append([]byte(nil), head...), rest: b}
}

// SplitPrefix returns the bytes Prepend put in front of a body and the
// body they were put in front of (nil and b itself when b has none). A
// store that keeps a body once (a file) and the header fields each holder
// adds beside it uses it; the caller must not change head.
func SplitPrefix(b Body) (head []byte, rest Body) {
	if p, ok := b.(*prefixed); ok {
		return p.head, p.rest
	}
	return nil, b
}

// BodyWriter receives the bytes of a new body as they arrive (an SMTP
// session writes DATA into one), so that a message in flight costs a
// small buffer, not its size. Commit ends the body and returns it; Abort
// drops what was written. Exactly one of them is called, once. A
// BodyWriter is not safe for concurrent use.
type BodyWriter interface {
	io.Writer
	// Commit returns the body written: in memory when it is small, in a
	// store's file otherwise (then its owner, the store, keeps it only
	// once a record references it; see the store's documentation).
	Commit() (Body, error)
	// Abort discards the body and whatever it holds (a file).
	Abort()
}

// MemoryBodyWriter is a BodyWriter that keeps the body in memory, for
// callers without a body store.
type MemoryBodyWriter struct{ buf bytes.Buffer }

// Write implements io.Writer.
func (w *MemoryBodyWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

// Commit implements BodyWriter.
func (w *MemoryBodyWriter) Commit() (Body, error) { return BytesBody(w.buf.Bytes()), nil }

// Abort implements BodyWriter.
func (w *MemoryBodyWriter) Abort() { w.buf = bytes.Buffer{} }

// prefixed is a Body with bytes in front of another.
type prefixed struct {
	head []byte
	rest Body
}

func (p *prefixed) Size() int64 { return int64(len(p.head)) + p.rest.Size() }

func (p *prefixed) Open() (io.ReadCloser, error) {
	r, err := p.rest.Open()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(p.head), r), r}, nil
}
