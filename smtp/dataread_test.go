package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// goDataReaderType returns the type of go-smtp's dataReader, known once
// a session has read DATA through the fast path; it fails the test if
// the session did not (the fast path is off: go-smtp's reader changed).
func goDataReaderType(t testing.TB) reflect.Type {
	t.Helper()
	if p := goDataReader.Load(); p != nil {
		return *p
	}
	ts := startServer(t.(*testing.T), Config{}, false)
	c := dialRaw(t, ts.addr)
	c.expect("EHLO client.example", 250)
	c.expect("MAIL FROM:<s@remote.example>", 250)
	c.expect("RCPT TO:<alice@example.test>", 250)
	c.expect("DATA", 354)
	c.expect("Subject: x\r\n\r\nx\r\n.", 250)
	c.expect("QUIT", 221)
	p := goDataReader.Load()
	if p == nil {
		t.Fatal("DATA was not read through fastDataReader: go-smtp's dataReader is not the one expected")
	}
	return *p
}

// newGoDataReader returns a genuine go-smtp dataReader over br, as
// go-smtp makes it for DATA with MaxMessageBytes limit (0: none).
func newGoDataReader(t testing.TB, br *bufio.Reader, limit int64) io.Reader {
	t.Helper()
	v := reflect.New(goDataReaderType(t).Elem())
	e := v.Elem()
	*(**bufio.Reader)(unsafe.Pointer(e.Field(0).UnsafeAddr())) = br
	if limit > 0 {
		*(*bool)(unsafe.Pointer(e.Field(2).UnsafeAddr())) = true
		*(*int64)(unsafe.Pointer(e.Field(3).UnsafeAddr())) = limit
	}
	return v.Interface().(io.Reader)
}

// setUnlimited does what go-smtp does to its reader after Data returns,
// before it drains it.
func setUnlimited(r io.Reader) {
	*(*bool)(unsafe.Pointer(reflect.ValueOf(r).Elem().Field(2).UnsafeAddr())) = false
}

var errInjected = errors.New("injected read error")

// chunkReader returns data in reads of the given sizes (cycled; 0 is an
// empty read), and errInjected, for good, from offset errAt (<0: never).
type chunkReader struct {
	data  []byte
	sizes []int
	errAt int
	off   int
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.errAt >= 0 && r.off >= r.errAt {
		return 0, errInjected
	}
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	n := len(r.data) - r.off
	if len(r.sizes) > 0 {
		n = min(n, r.sizes[r.i%len(r.sizes)])
		r.i++
	}
	if r.errAt >= 0 {
		n = min(n, r.errAt-r.off)
	}
	n = copy(p[:min(n, len(p))], r.data[r.off:])
	r.off += n
	return n, nil
}

// dataCase is one run of a DATA reader: the stream, how it arrives, the
// sizes of the reads (cycled), the limits.
type dataCase struct {
	stream    []byte
	chunks    []int
	errAt     int
	bufSize   int // of the bufio.Reader (go-smtp's is 4096)
	reads     []int
	limit     int64
	maxLine   int
	maxErrors int // reads after the first error before giving up
}

// dataOutcome is everything a DATA reader's user can observe.
type dataOutcome struct {
	reads    []string // each Read: its bytes and its error
	bare     bool
	long     bool
	drained  string // go-smtp's drain after Data: bytes and final error
	rest     string // what is left of the stream for the next command
	restErr  error
	sizeLeft int64
}

// runData reads a case to its end the way the session and go-smtp do:
// the session reads until the first error (io.EOF at the end), go-smtp
// then drains its reader without the size limit, and reads the next
// command from the bufio.Reader.
func runData(t testing.TB, tc dataCase, fast bool) dataOutcome {
	br := bufio.NewReaderSize(&chunkReader{data: tc.stream, sizes: tc.chunks, errAt: tc.errAt}, tc.bufSize)
	gr := newGoDataReader(t, br, tc.limit)
	sc := lineScanner{maxLine: tc.maxLine}
	var r io.Reader = gr
	if fast {
		fr := newFastDataReader(gr, &sc)
		if fr == nil {
			t.Fatal("newFastDataReader refused go-smtp's reader")
		}
		r = fr
	}
	var out dataOutcome
	buf := make([]byte, 64<<10)
	for i := 0; i < 1000; i++ {
		size := tc.reads[i%len(tc.reads)]
		n, err := r.Read(buf[:size])
		if !fast {
			sc.scan(buf[:n])
		}
		out.reads = append(out.reads, fmt.Sprintf("%q %v", buf[:n], err))
		if err != nil {
			break
		}
	}
	sc.end()
	out.bare, out.long = sc.bare, sc.long
	setUnlimited(gr)
	var d bytes.Buffer
	_, err := io.Copy(&d, gr)
	out.drained = fmt.Sprintf("%q %v", d.Bytes(), err)
	rest, err := io.ReadAll(br)
	out.rest, out.restErr = string(rest), err
	out.sizeLeft = *(*int64)(unsafe.Pointer(reflect.ValueOf(gr).Elem().Field(3).UnsafeAddr()))
	return out
}

func checkSameData(t *testing.T, tc dataCase) {
	t.Helper()
	old, fast := runData(t, tc, false), runData(t, tc, true)
	if !reflect.DeepEqual(old, fast) {
		t.Fatalf("case %+v:\ngo-smtp's reader: %+v\nfastDataReader:   %+v", tc, old, fast)
	}
}

// dataStreams are DATA streams (what follows the 354) with the
// sequences the readers treat specially, each followed by a command.
var dataStreams = []string{
	"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n",
	".\r\nQUIT\r\n",
	"\r\n.\r\nQUIT\r\n",
	"..stuffed\r\n...two\r\n.x\r\n.\r\n",
	"carrier\n.\r\nMAIL FROM:<a@b>\r\n.\r\n",
	"carrier\r.\r\nMAIL FROM:<a@b>\r\n.\r\n",
	"carrier\n.\nMAIL FROM:<a@b>\r\n.\r\n",
	"carrier\r\n.\nMAIL FROM:<a@b>\r\n.\r\n",
	"carrier\r\n.\rMAIL FROM:<a@b>\r\n.\r\n",
	"carrier\r\n.\r\rx\r\n.\r\n",
	"carrier\n.\rMAIL\r\n.\r\n",
	"end with CR\r\r\n.\r\n",
	"\r\r\r\n\n\n.\r\n",
	"..\r\n.\r.\r\n.\r\n",
	"x\r\n..\r\n.\r\n",
	"line " + strings.Repeat("y", 60) + "\r\nshort\r\n" + strings.Repeat("z", 61) + "\r\n.\r\n",
	"no end at all\r\n",
	"no end, CR at the end\r",
	"",
	"\x00\xff\r\n.\x00\r\n.\r\n",
}

// TestFastDataReader compares fastDataReader with go-smtp's dataReader
// on the streams above, split across the connection's reads at every
// position, through a small and go-smtp's bufio.Reader, with reads of
// several sizes, with and without a size limit (at every size up to the
// stream's), and with a read error at every position.
func TestFastDataReader(t *testing.T) {
	for _, s := range dataStreams {
		stream := []byte(s)
		for split := 0; split <= len(stream); split++ {
			for _, bufSize := range []int{16, 4096} {
				for _, reads := range [][]int{{64 << 10}, {1}, {3, 1, 7}} {
					checkSameData(t, dataCase{stream: stream, chunks: []int{split, len(stream)}, errAt: -1,
						bufSize: bufSize, reads: reads, maxLine: 60})
				}
			}
			checkSameData(t, dataCase{stream: stream, chunks: []int{split, 1, 2}, errAt: -1,
				bufSize: 16, reads: []int{5}, limit: int64(split) + 1, maxLine: 10})
			checkSameData(t, dataCase{stream: stream, chunks: []int{4}, errAt: split,
				bufSize: 16, reads: []int{64 << 10}, maxLine: 60})
		}
	}
}

// FuzzFastDataReader compares fastDataReader with go-smtp's dataReader on
// random streams, arrival chunks, read sizes, limits and read errors.
func FuzzFastDataReader(f *testing.F) {
	for _, s := range dataStreams {
		f.Add([]byte(s), uint8(3), uint8(1), uint16(0), uint8(60), int16(-1), false)
	}
	f.Add([]byte("a\r\n.\r\n"), uint8(0), uint8(2), uint16(3), uint8(1), int16(2), true)
	f.Fuzz(func(t *testing.T, stream []byte, chunk, read uint8, limit uint16, maxLine uint8, errAt int16, bigBuf bool) {
		tc := dataCase{stream: stream, chunks: []int{int(chunk), int(chunk)/3 + 1}, errAt: int(errAt),
			bufSize: 16, reads: []int{int(read) + 1, 64 << 10}, limit: int64(limit), maxLine: int(maxLine)}
		if bigBuf {
			tc.bufSize = 4096
		}
		checkSameData(t, tc)
	})
}

// TestFastDataSessions runs whole sessions through a server reading DATA
// the fast way and one reading it through go-smtp's reader and scanning it
// separately (slowData): the replies and the queued messages must be the
// same, for the streams above and for messages over the size and line
// limits.
func TestFastDataSessions(t *testing.T) {
	streams := append([]string(nil), dataStreams...)
	streams = append(streams,
		strings.Repeat("0123456789\r\n", 20)+".\r\n",             // over MaxMessageBytes
		"Subject: x\r\n\r\n"+strings.Repeat("w", 41)+"\r\n.\r\n", // over MaxDataLineLength
		"Subject: x\r\n\r\n"+strings.Repeat("w", 40)+"\r\n.\r\n", // at it
		strings.Repeat("v", 300)+"\r\n.\r\n",                     // over go-smtp's line limit
	)
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	session := func(slow bool, stream string) (string, [][]byte) {
		ts := startServer(t, Config{Now: now, MaxMessageBytes: 200, MaxDataLineLength: 40, MaxLineLength: 100, slowData: slow}, false)
		c := dialRaw(t, ts.addr)
		c.send("EHLO client.example\r\nMAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
		for _, want := range []int{250, 250, 250, 354} {
			if code, msg := c.read(); code != want {
				t.Fatalf("got %d %q, want %d", code, msg, want)
			}
		}
		// go-smtp ends DATA at CR LF "." CR LF only after a line it
		// saw begin: not after "\r\r\n" (CR CR is not a line end).
		c.send(stream + "\r\n\r\n.\r\nNOOP\r\nQUIT\r\n")
		c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		transcript, err := io.ReadAll(c.r.R)
		if err != nil {
			t.Fatalf("reading the replies: %v", err)
		}
		envs, bodies := ts.enq.messages()
		out := string(transcript)
		for i, env := range envs {
			out = strings.ReplaceAll(out, env.ID, "<id>")
			bodies[i] = bytes.ReplaceAll(bodies[i], []byte(env.ID), []byte("<id>"))
		}
		return out, bodies
	}
	for _, s := range streams {
		before := fastDataPhases.Load()
		oldT, oldB := session(true, s)
		if fastDataPhases.Load() != before {
			t.Fatal("a slowData session read DATA through fastDataReader")
		}
		newT, newB := session(false, s)
		if fastDataPhases.Load() == before {
			t.Fatal("the session did not read DATA through fastDataReader")
		}
		if oldT != newT || !reflect.DeepEqual(oldB, newB) {
			t.Errorf("stream %q:\nslow: %q %q\nfast: %q %q", s, oldT, oldB, newT, newB)
		}
	}
}
