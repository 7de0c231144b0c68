package imap

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// filterConn is the connection imapserver reads and writes. Reading, it
// passes the client's bytes through command by command (literals
// included, RFC 9051 §4.3), and answers some commands itself without
// imapserver seeing them: STARTTLS, ID, GETQUOTA, GETQUOTAROOT, SETQUOTA.
// It does so only at the start of a command while imapserver waits for
// the next one (it has written every answer to the one before: it reads
// a command only after it finished the previous), and never in IDLE (the
// line after IDLE is DONE). Writing, it rewrites the capability lists
// imapserver sends (greeting, CAPABILITY, the OK of LOGIN and
// AUTHENTICATE) to what this connection offers.
type filterConn struct {
	net.Conn // the TCP connection (addresses, deadlines before TLS)

	tlsConfig *tls.Config
	handler   commandHandler

	mu      sync.Mutex
	cur     net.Conn // the TCP connection, or TLS over it
	br      *bufio.Reader
	isTLS   bool
	pending []byte
	literal int64 // bytes of a literal still to pass through
	atStart bool  // the next line starts a command
	inIdle  bool  // the next line is IDLE's DONE
	// syncLiteral: the literal ends a line as {n}, which the client sends
	// only after the server's "+" (RFC 9051 §7.5); the server may refuse
	// it with a tagged answer instead (NO [TOOBIG]), and then the next
	// line starts a command.
	syncLiteral bool

	wmu       sync.Mutex
	rewriting bool   // capability lines are being rewritten
	untilTag  string // until the tagged answer to this tag
	wbuf      []byte
	// lastPlus: the last line the server began is a continuation
	// request ("+ ..."): the client's next line answers it (a literal
	// follows, or an AUTHENTICATE response), it is not a command.
	lastPlus   bool
	wLineStart bool // the last byte written ended a line
	out        []byte

	// inRead: a read from the network is in progress (the server waits
	// for the client), so what is written goes out at once.
	inRead atomic.Bool
	// wd: imapserver's write deadline, applied when output goes out
	// (deadline.go).
	wd writeDeadline
}

// outFlush is how much output the filter holds before it writes it.
// imapserver flushes after every response line (one write(2) per message
// of a FETCH); the filter holds its output until the server reads from
// the network again (it has answered what it could), the output reaches
// outFlush, or the connection closes.
const outFlush = 32 << 10

// netReader reads the connection for the filter's bufio.Reader, which
// calls it only when it has nothing buffered: the server waits for the
// client, so the output held goes out first.
type netReader struct {
	c    *filterConn
	conn net.Conn
}

func (r netReader) Read(p []byte) (int, error) {
	r.c.inRead.Store(true)
	defer r.c.inRead.Store(false)
	r.c.wmu.Lock()
	_ = r.c.flushLocked() // a broken connection fails the read too
	r.c.wmu.Unlock()
	return r.conn.Read(p)
}

// emit queues output (wmu held), writing it when outFlush is reached or
// a read waits.
func (c *filterConn) emit(p []byte) error {
	if len(c.out) == 0 && len(p) >= outFlush {
		if err := c.wd.apply(c.Conn.SetWriteDeadline); err != nil {
			return err
		}
		_, err := c.cur.Write(p)
		return err
	}
	c.out = append(c.out, p...)
	if len(c.out) >= outFlush || c.inRead.Load() {
		return c.flushLocked()
	}
	return nil
}

func (c *filterConn) flushLocked() error {
	if len(c.out) == 0 {
		return nil
	}
	if err := c.wd.apply(c.Conn.SetWriteDeadline); err != nil {
		return err
	}
	_, err := c.cur.Write(c.out)
	c.out = c.out[:0]
	if cap(c.out) > 4*outFlush {
		c.out = nil
	}
	return err
}

// Close writes the output held, then closes the connection.
func (c *filterConn) Close() error {
	c.wmu.Lock()
	_ = c.flushLocked()
	c.wmu.Unlock()
	return c.Conn.Close()
}

// commandHandler answers the commands the filter takes; state is read for
// the capabilities.
type commandHandler interface {
	// capabilities rewrites a capability list for the connection's state.
	capabilities(caps []string, isTLS bool) []string
	// command answers tag name args (the rest of the line) and reports
	// whether it did; answer writes a line (CRLF added).
	command(tag, name, args string, isTLS bool, answer func(line string) error) (bool, error)
	// mayStartTLS: not yet authenticated.
	mayStartTLS() bool
}

// maxLine bounds a line the filter looks at; longer lines pass through.
const maxLine = 64 << 10

func newFilterConn(c net.Conn, isTLS bool, cfg *tls.Config, h commandHandler) *filterConn {
	fc := &filterConn{Conn: c, cur: c, isTLS: isTLS, tlsConfig: cfg,
		handler: h, atStart: true, rewriting: true, wLineStart: true}
	fc.br = bufio.NewReaderSize(netReader{fc, c}, 16<<10)
	return fc
}

// TLS reports whether the connection is encrypted now.
func (c *filterConn) TLS() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isTLS
}

// ConnectionState is the TLS state (zero before TLS).
func (c *filterConn) ConnectionState() tls.ConnectionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.cur.(*tls.Conn); ok {
		return t.ConnectionState()
	}
	return tls.ConnectionState{}
}

func (c *filterConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) == 0 {
		if c.syncLiteral {
			// imapserver reads on only after it asked for the literal
			// or answered the command.
			c.syncLiteral = false
			if !c.continued() {
				c.literal, c.atStart = 0, true
			}
		}
		if c.literal > 0 {
			n := int(min(c.literal, int64(len(p))))
			n, err := c.br.Read(p[:n])
			c.literal -= int64(n)
			return n, err
		}
		line, complete, err := c.readLine()
		if err != nil && len(line) == 0 {
			return 0, err
		}
		if c.atStart && !c.inIdle && c.continued() {
			// An answer to a continuation request (AUTHENTICATE's
			// exchange), not a command.
			c.pending = line
			c.atStart = complete
			break
		}
		if c.atStart && !c.inIdle && len(line) > maxCommandLine {
			if err := c.refuseLongLine(line, complete); err != nil {
				return 0, err
			}
			continue
		}
		if complete && c.atStart && !c.inIdle {
			handled, herr := c.intercept(line)
			if herr != nil {
				return 0, herr
			}
			if handled {
				continue
			}
		}
		if c.atStart && !c.inIdle {
			c.startRewrite(line)
		}
		c.inIdle = false
		if complete {
			if n, ok := literalAtEnd(line); ok {
				c.literal, c.atStart = n, false
				if !bytes.HasSuffix(bytes.TrimRight(line, "\r\n"), []byte("+}")) {
					c.syncLiteral = true
				}
			} else {
				c.atStart = true
				if c.isIdle(line) {
					c.inIdle = true
				}
			}
		} else {
			c.atStart = false
		}
		c.pending = line
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// maxCommandLine is the longest command line passed to imapserver, which
// takes commands of up to 50 KiB: past that its decoder fails in the
// middle of the line and it reads the rest as a command of its own, and
// closes the connection.
const maxCommandLine = 48 << 10

// maxDiscard bounds the bytes of one overlong line the filter reads away;
// past it the connection ends.
const maxDiscard = 1 << 20

// refuseLongLine answers a command line longer than maxCommandLine with
// BAD (RFC 9051 §7.1.5) and reads the rest of it away, so that the next
// line is the next command.
func (c *filterConn) refuseLongLine(line []byte, complete bool) error {
	tag, _, _ := words(line)
	total := len(line)
	for !complete {
		var err error
		line, complete, err = c.readLine()
		if err != nil {
			return err
		}
		if total += len(line); total > maxDiscard {
			// imapserver reads on after an error other than EOF: the
			// connection itself ends.
			_, _ = c.writeRaw([]byte("* BYE Command line too long\r\n"))
			_ = c.Conn.Close()
			return io.EOF
		}
	}
	if tag == "" || strings.ContainsAny(tag, "+*{") {
		tag = "*"
	}
	_, err := c.writeRaw([]byte(tag + " BAD Command line too long\r\n"))
	return err
}

// readLine reads up to a LF (complete) or maxLine bytes.
func (c *filterConn) readLine() ([]byte, bool, error) {
	var out []byte
	for {
		b, err := c.br.ReadSlice('\n')
		out = append(out, b...)
		switch {
		case err == nil:
			return out, true, nil
		case errors.Is(err, bufio.ErrBufferFull) && len(out) < maxLine:
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			return out, false, nil
		default:
			return out, false, err
		}
	}
}

// literalAtEnd: a line that ends with {n}, {n+} or ~{n} (RFC 9051 §4.3,
// RFC 7888 LITERAL+, RFC 3516 literal8) is followed by n bytes.
func literalAtEnd(line []byte) (int64, bool) {
	l := bytes.TrimRight(line, "\r\n")
	if len(l) < 3 || l[len(l)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	num := strings.TrimSuffix(string(l[i+1:len(l)-1]), "+")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// words splits the start of a command line: tag, name, the rest.
func words(line []byte) (tag, name, rest string) {
	s := strings.TrimRight(string(line), "\r\n")
	tag, s, _ = strings.Cut(s, " ")
	name, rest, _ = strings.Cut(s, " ")
	return tag, strings.ToUpper(name), rest
}

// isAtom: 1*ATOM-CHAR (RFC 9051 §9), as imapserver reads tags and names;
// "+" is left out of tags.
func isAtom(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]+`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

func (c *filterConn) isIdle(line []byte) bool {
	_, name, rest := words(line)
	return name == "IDLE" && rest == ""
}

// startRewrite: the answer to CAPABILITY, LOGIN and AUTHENTICATE carries
// capability lists to rewrite.
func (c *filterConn) startRewrite(line []byte) {
	tag, name, _ := words(line)
	switch name {
	case "CAPABILITY", "LOGIN", "AUTHENTICATE":
		c.wmu.Lock()
		c.rewriting, c.untilTag = true, tag
		c.wmu.Unlock()
	}
}

// intercept answers the commands the filter takes.
func (c *filterConn) intercept(line []byte) (bool, error) {
	tag, name, rest := words(line)
	answer := func(s string) error {
		_, err := c.writeRaw([]byte(s + "\r\n"))
		return err
	}
	// imapserver closes the connection when a line does not start with
	// a tag and a command name (RFC 9051 §2.2.1): answer BAD instead.
	sub, _, _ := strings.Cut(rest, " ")
	switch {
	case !isAtom(tag):
		return true, answer("* BAD Syntax error: a command starts with a tag")
	case !isAtom(name) || name == "UID" && !isAtom(sub):
		return true, answer(tag + " BAD Syntax error: a tag and then a command name")
	}
	if name == "STARTTLS" {
		return true, c.startTLS(tag, rest, answer)
	}
	return c.handler.command(tag, name, rest, c.isTLS, answer)
}

// startTLS is RFC 9051 §6.2.1. Bytes the client sent after the command
// (before the handshake) are dropped: plaintext must not be taken as if
// it came over TLS (CVE-2011-0411).
func (c *filterConn) startTLS(tag, rest string, answer func(string) error) error {
	switch {
	case rest != "":
		return answer(tag + " BAD STARTTLS takes no arguments")
	case c.tlsConfig == nil || c.isTLS || !c.handler.mayStartTLS():
		return answer(tag + " BAD STARTTLS not available")
	}
	if err := answer(tag + " OK Begin TLS negotiation now"); err != nil {
		return err
	}
	if n := c.br.Buffered(); n > 0 {
		_, _ = c.br.Discard(n)
	}
	t := tls.Server(c.Conn, c.tlsConfig)
	_ = t.SetDeadline(time.Now().Add(30 * time.Second))
	if err := t.Handshake(); err != nil {
		return fmt.Errorf("imap: STARTTLS handshake: %w", err)
	}
	_ = t.SetDeadline(time.Time{})
	c.wmu.Lock()
	c.cur, c.isTLS = t, true
	c.wmu.Unlock()
	c.br = bufio.NewReaderSize(netReader{c, t}, 16<<10)
	return nil
}

// writeRaw writes the filter's own answers, after the output held.
func (c *filterConn) writeRaw(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.noteContinuation(p)
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.cur.Write(p)
}

// noteContinuation keeps lastPlus: whether the last line begun in what
// the server wrote starts with "+".
func (c *filterConn) noteContinuation(p []byte) {
	for i, b := range p {
		if i == 0 && c.wLineStart || i > 0 && p[i-1] == '\n' {
			c.lastPlus = b == '+'
		}
	}
	if len(p) > 0 {
		c.wLineStart = p[len(p)-1] == '\n'
	}
}

// continued reports whether the server's last line is a continuation
// request. imapserver writes one and then reads, so when it reads next
// this tells what it waits for.
func (c *filterConn) continued() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.lastPlus
}

func (c *filterConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.noteContinuation(p)
	if !c.rewriting {
		if err := c.emit(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	c.wbuf = append(c.wbuf, p...)
	for c.rewriting {
		i := bytes.IndexByte(c.wbuf, '\n')
		if i < 0 {
			if len(c.wbuf) > maxLine {
				c.rewriting = false
				break
			}
			return len(p), nil
		}
		line := c.wbuf[:i+1]
		out, last := c.rewriteLine(line)
		if err := c.emit(out); err != nil {
			return 0, err
		}
		c.wbuf = c.wbuf[i+1:]
		if last {
			c.rewriting = false
		}
	}
	if len(c.wbuf) > 0 {
		rest := c.wbuf
		c.wbuf = nil
		if err := c.emit(rest); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// rewriteLine rewrites "* CAPABILITY ..." and "X OK [CAPABILITY ...]"
// lines; last: this line ends the answer being rewritten (the greeting,
// or the tagged answer).
func (c *filterConn) rewriteLine(line []byte) ([]byte, bool) {
	s := strings.TrimRight(string(line), "\r\n")
	tag, rest, _ := strings.Cut(s, " ")
	last := c.untilTag == "" || tag == c.untilTag
	if tag != "*" && !last {
		return line, false
	}
	var caps []string
	var prefix, suffix string
	switch {
	case strings.HasPrefix(rest, "CAPABILITY "):
		caps = strings.Fields(rest[len("CAPABILITY "):])
		prefix = tag + " CAPABILITY "
	case strings.Contains(rest, "[CAPABILITY "):
		i := strings.Index(rest, "[CAPABILITY ")
		j := strings.IndexByte(rest[i:], ']')
		if j < 0 {
			return line, last
		}
		caps = strings.Fields(rest[i+len("[CAPABILITY ") : i+j])
		prefix, suffix = tag+" "+rest[:i]+"[CAPABILITY ", "]"+rest[i+j+1:]
	default:
		return line, last && tag != "*"
	}
	caps = c.handler.capabilities(caps, c.isTLS)
	return []byte(prefix + strings.Join(caps, " ") + suffix + "\r\n"), last
}

var _ io.ReadWriter = (*filterConn)(nil)
