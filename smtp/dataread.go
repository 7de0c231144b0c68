package smtp

import (
	"bufio"
	"bytes"
	"io"
	"reflect"
	"sync/atomic"
	"unsafe"

	gosmtp "github.com/emersion/go-smtp"
)

// DATA in large pieces.
//
// go-smtp hands Session.Data its dataReader, which undoes dot-stuffing and
// finds the end of the data one ReadByte at a time from the connection's
// bufio.Reader; the session then scanned every byte again for bare CR, bare
// LF and line lengths (lineScanner). go-smtp (v0.25) has no hook to replace
// the reader, so fastDataReader takes over the dataReader's own state — its
// bufio.Reader, its state machine's state and its size limit — and does the
// same work on whole runs of buffered bytes: a run without CR or LF is one
// copy and one addition to the line length, only CR, LF and a line's first
// byte go through the state machine. It updates the dataReader's fields as
// it goes, so that what go-smtp does after Data (it drains the reader to
// the end of the data) finds the reader where the session left it.
//
// The state machine and the limit are go-smtp's (data.go, taken from
// net/textproto), byte for byte, including its quirks (a "." CR at the
// start of a line not followed by LF is dropped; a message of exactly
// MaxMessageBytes is too large); TestFastDataReader and
// FuzzFastDataReader compare it with go-smtp's reader itself. If the
// dataReader's fields are not the ones expected (another go-smtp version),
// the session reads through go-smtp's reader as before.

// The states of go-smtp's dataReader.
const (
	stateBeginLine = iota // beginning of line; initial state; must be zero
	stateDot              // read . at beginning of line
	stateDotCR            // read .\r at beginning of line
	stateCR               // read \r (possibly at end of line)
	stateData             // reading data in middle of line
	stateEOF              // reached .\r\n end marker line
)

// goDataReader is the type of go-smtp's dataReader once it has been
// checked to have the expected fields (goDataReaderFields).
var goDataReader atomic.Pointer[reflect.Type]

// fastDataPhases counts the DATA phases read by fastDataReader (tests
// check that the fast path is taken).
var fastDataPhases atomic.Int64

// goDataReaderFields are the fields of go-smtp's dataReader, in order.
var goDataReaderFields = []struct {
	name string
	typ  reflect.Type
}{
	{"r", reflect.TypeOf((*bufio.Reader)(nil))},
	{"state", reflect.TypeOf(0)},
	{"limited", reflect.TypeOf(false)},
	{"n", reflect.TypeOf(int64(0))},
}

// isGoDataReader reports whether t is *dataReader of go-smtp with the
// expected fields.
func isGoDataReader(t reflect.Type) bool {
	if p := goDataReader.Load(); p != nil {
		return *p == t
	}
	if t.Kind() != reflect.Pointer {
		return false
	}
	e := t.Elem()
	if e.Kind() != reflect.Struct || e.Name() != "dataReader" ||
		e.PkgPath() != reflect.TypeOf(gosmtp.SMTPError{}).PkgPath() || e.NumField() != len(goDataReaderFields) {
		return false
	}
	for i, f := range goDataReaderFields {
		if e.Field(i).Name != f.name || e.Field(i).Type != f.typ {
			return false
		}
	}
	goDataReader.Store(&t)
	return true
}

// fastDataReader reads DATA in place of go-smtp's dataReader, on its
// fields, and scans what it returns with sc (as lineScanner.scan would).
type fastDataReader struct {
	br      *bufio.Reader
	state   *int
	limited *bool
	n       *int64
	sc      *lineScanner
}

// newFastDataReader returns a fastDataReader over r, go-smtp's DATA
// reader, scanning with sc; nil if r is not one (BDAT's pipe, another
// go-smtp version).
func newFastDataReader(r io.Reader, sc *lineScanner) *fastDataReader {
	fr := new(fastDataReader)
	if !fr.init(r, sc) {
		return nil
	}
	return fr
}

// init makes fr read in place of r (see newFastDataReader); false if it
// cannot.
func (fr *fastDataReader) init(r io.Reader, sc *lineScanner) bool {
	if r == nil || !isGoDataReader(reflect.TypeOf(r)) {
		return false
	}
	v := reflect.ValueOf(r).Elem()
	br := *(**bufio.Reader)(unsafe.Pointer(v.Field(0).UnsafeAddr()))
	if br == nil {
		return false
	}
	*fr = fastDataReader{
		br:      br,
		state:   (*int)(unsafe.Pointer(v.Field(1).UnsafeAddr())),
		limited: (*bool)(unsafe.Pointer(v.Field(2).UnsafeAddr())),
		n:       (*int64)(unsafe.Pointer(v.Field(3).UnsafeAddr())),
		sc:      sc,
	}
	return true
}

// Read is go-smtp's dataReader.Read: it fills b until the end of the data
// (then io.EOF) or an error.
func (r *fastDataReader) Read(b []byte) (n int, err error) {
	if *r.limited {
		if *r.n <= 0 {
			return 0, gosmtp.ErrDataTooLarge
		}
		if int64(len(b)) > *r.n {
			b = b[0:*r.n]
		}
	}
	state := *r.state
	sc := r.sc
	for n < len(b) && state != stateEOF {
		if r.br.Buffered() == 0 {
			// Block for more, the way go-smtp's reader does (so that
			// the connection is read, and fails, at the same points).
			if _, err = r.br.ReadByte(); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				break
			}
			r.br.UnreadByte()
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		i := 0
		for i < len(buf) && n < len(b) && state != stateEOF {
			if state == stateData {
				w := buf[i:]
				if room := len(b) - n; len(w) > room {
					w = w[:room]
				}
				if k := indexCRorLF(w); k > 0 {
					copy(b[n:], w[:k])
					n += k
					i += k
					sc.plain(k)
					continue
				}
			}
			c := buf[i]
			i++
			switch state {
			case stateBeginLine:
				if c == '.' {
					state = stateDot
					continue
				}
				if c == '\r' {
					state = stateCR
					break
				}
				state = stateData
			case stateDot:
				if c == '\r' {
					state = stateDotCR
					continue
				}
				state = stateData
			case stateDotCR:
				if c == '\n' {
					state = stateEOF
					continue
				}
				state = stateData
			case stateCR:
				if c == '\n' {
					state = stateBeginLine
					break
				}
				state = stateData
			case stateData:
				if c == '\r' {
					state = stateCR
				}
			}
			b[n] = c
			n++
			sc.scanByte(c)
		}
		r.br.Discard(i)
	}
	*r.state = state
	if err == nil && state == stateEOF {
		err = io.EOF
	}
	if *r.limited {
		*r.n -= int64(n)
	}
	return n, err
}

// indexCRorLF returns the index of the first CR or LF in p, len(p) if
// there is none.
func indexCRorLF(p []byte) int {
	k := bytes.IndexByte(p, '\r')
	if k < 0 {
		k = len(p)
	}
	if j := bytes.IndexByte(p[:k], '\n'); j >= 0 {
		return j
	}
	return k
}

// plain scans k bytes that are neither CR nor LF, as scan would.
func (sc *lineScanner) plain(k int) {
	if sc.prevCR {
		sc.bare = true
	}
	sc.prevCR = false
	sc.lineLen += k
	if sc.lineLen > sc.maxLine {
		sc.long = true
	}
}

// scanByte scans one byte (scan is a loop over it).
func (sc *lineScanner) scanByte(b byte) {
	if sc.prevCR && b != '\n' {
		sc.bare = true
	}
	switch b {
	case '\n':
		if !sc.prevCR {
			sc.bare = true
		}
		sc.lineLen = 0
	case '\r':
	default:
		sc.lineLen++
		if sc.lineLen > sc.maxLine {
			sc.long = true
		}
	}
	sc.prevCR = b == '\r'
}
