package pop3

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
)

// canonWriter passes a message on to w as a POP3 multi-line response
// carries it, streaming, with memory independent of the message and of its
// line lengths:
//
//   - every bare LF becomes CRLF (RFC 1939 §11: the octets are counted
//     with CRLF line ends); a bare CR is left as it is;
//   - with stuff set, a line that begins with "." gets one more "."
//     (RFC 1939 §3: "If any line begins with the termination octet, the
//     line is 'byte-stuffed' by pre-pending the termination octet");
//   - with top >= 0 it passes only the header, the blank line after it and
//     top lines of the body (RFC 1939 §7, TOP), and reports Done once it
//     has; without a blank line the whole message is the header;
//   - Finish ends a last line that lacks its line end with CRLF, so the
//     terminator "." CRLF that follows is on a line of its own.
//
// Written counts the octets of the message as sent, stuffing dots
// excluded: the size LIST reports (see CanonicalSize).
type canonWriter struct {
	w     io.Writer
	stuff bool
	top   int // body lines still to pass; < 0: the whole message

	lineStart bool // the next octet begins a line
	prevCR    bool // the last octet passed was CR
	lineLen   int  // octets of the current line so far (CR included)
	inBody    bool // the blank line after the header has passed
	done      bool // TOP has passed all it wants

	written int64
	err     error
}

// newCanonWriter returns a canonWriter to w; top < 0 passes the whole
// message.
func newCanonWriter(w io.Writer, stuff bool, top int) *canonWriter {
	return &canonWriter{w: w, stuff: stuff, top: top, lineStart: true}
}

var (
	crlf     = []byte("\r\n")
	lf       = []byte("\n")
	stuffDot = []byte(".")
)

// Write passes p on. It always consumes all of p (what comes after Done is
// dropped) and returns the first error of w.
func (c *canonWriter) Write(p []byte) (int, error) {
	n := len(p)
	start := 0 // p[start:i] is passed as it is
	for i := 0; i < len(p) && !c.done && c.err == nil; i++ {
		b := p[i]
		switch {
		case b == '\n':
			c.emit(p[start:i])
			if c.prevCR {
				c.emit(lf)
			} else {
				c.emit(crlf)
			}
			start = i + 1
			c.endLine()
		case c.lineStart && b == '.' && c.stuff:
			c.emit(p[start:i])
			c.emitStuffing()
			start = i // the dot itself goes with the next run
			c.lineStart, c.prevCR = false, false
			c.lineLen++
		default:
			c.lineStart = false
			c.prevCR = b == '\r'
			c.lineLen++
		}
	}
	if !c.done {
		c.emit(p[start:])
	}
	return n, c.err
}

// endLine accounts for a line end just passed.
func (c *canonWriter) endLine() {
	empty := c.lineLen == 0 || (c.lineLen == 1 && c.prevCR)
	c.lineStart, c.prevCR, c.lineLen = true, false, 0
	if c.top < 0 {
		return
	}
	switch {
	case !c.inBody:
		if empty {
			c.inBody = true
			c.done = c.top == 0
		}
	default:
		c.top--
		c.done = c.top == 0
	}
}

// Finish ends an unterminated last line with CRLF (or LF after a CR).
func (c *canonWriter) Finish() error {
	if !c.lineStart && !c.done && c.err == nil {
		if c.prevCR {
			c.emit(lf)
		} else {
			c.emit(crlf)
		}
		c.lineStart, c.prevCR, c.lineLen = true, false, 0
	}
	return c.err
}

// Done reports whether TOP has passed everything it wants: the rest of the
// message need not be read.
func (c *canonWriter) Done() bool { return c.done }

// Written is the number of message octets passed, stuffing excluded.
func (c *canonWriter) Written() int64 { return c.written }

func (c *canonWriter) emit(b []byte) {
	if len(b) == 0 || c.err != nil {
		return
	}
	_, c.err = c.w.Write(b)
	c.written += int64(len(b))
}

func (c *canonWriter) emitStuffing() {
	if c.err == nil {
		_, c.err = c.w.Write(stuffDot)
	}
}

// CanonicalSize returns the size of the message r yields as RETR sends it
// (RFC 1939 §11), for a Maildrop whose stored messages may have bare LF
// line ends or lack a last line end: the octets with every bare LF made
// CRLF and a last line end added, dot-stuffing not counted.
func CanonicalSize(r io.Reader) (int64, error) {
	c := newCanonWriter(io.Discard, false, -1)
	if _, err := io.Copy(c, r); err != nil {
		return 0, err
	}
	if err := c.Finish(); err != nil {
		return 0, err
	}
	return c.Written(), nil
}

// maxUniqueID is the longest unique-id RFC 1939 §7 allows.
const maxUniqueID = 70

// UniqueID returns the unique-id UIDL sends for a Message.ID (RFC 1939 §7:
// "The unique-id of a message is an arbitrary server-determined string,
// consisting of one to 70 characters in the range 0x21 to 0x7E"): the ID
// itself when it is one, otherwise "~" and the unpadded base64url SHA-256
// of it: 44 octets, the same in every session.
func UniqueID(id string) string {
	if validUniqueID(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "~" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func validUniqueID(id string) bool {
	if len(id) < 1 || len(id) > maxUniqueID {
		return false
	}
	for _, c := range []byte(id) {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
