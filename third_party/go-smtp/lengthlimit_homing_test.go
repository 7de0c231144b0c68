package smtp

// homing patch: the test of the run-at-a-time line counting.

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
)

// upstreamLineLimitReader is go-smtp v0.25.1's lineLimitReader, byte by
// byte, the reference.
type upstreamLineLimitReader struct {
	R             io.Reader
	LineLimit     int
	curLineLength int
}

func (r *upstreamLineLimitReader) Read(b []byte) (int, error) {
	if r.curLineLength > r.LineLimit && r.LineLimit > 0 {
		return 0, ErrTooLongLine
	}
	n, err := r.R.Read(b)
	if err != nil {
		return n, err
	}
	if r.LineLimit == 0 {
		return n, nil
	}
	for _, chr := range b[:n] {
		if chr == '\n' {
			r.curLineLength = 0
		}
		r.curLineLength++
		if r.curLineLength > r.LineLimit {
			return 0, ErrTooLongLine
		}
	}
	return n, nil
}

// chunks hands out its data in the sizes given, one per Read.
type chunks struct {
	data  []byte
	sizes []int
}

func (c *chunks) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.sizes) > 0 {
		if c.sizes[0] < n {
			n = c.sizes[0]
		}
		c.sizes = c.sizes[1:]
	}
	n = copy(b, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// readAll reads r to the end or the first error, in reads of size bytes,
// and says what each read returned.
func readAll(r io.Reader, size int) (out []byte, trace []int, err error) {
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		trace = append(trace, n)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, trace, err
		}
	}
}

func TestLineLimitReaderAsUpstream(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		size := rng.Intn(300)
		data := make([]byte, size)
		lf := rng.Intn(60) + 1
		for j := range data {
			if rng.Intn(lf) == 0 {
				data[j] = '\n'
			} else {
				data[j] = 'a' + byte(rng.Intn(3))
			}
		}
		var sizes []int
		for k := 0; k < 8; k++ {
			sizes = append(sizes, rng.Intn(40)+1)
		}
		limit := rng.Intn(50)
		readSize := rng.Intn(64) + 1
		got, gotTrace, gotErr := readAll(&lineLimitReader{R: &chunks{data: data, sizes: append([]int(nil), sizes...)}, LineLimit: limit}, readSize)
		want, wantTrace, wantErr := readAll(&upstreamLineLimitReader{R: &chunks{data: data, sizes: sizes}, LineLimit: limit}, readSize)
		if !bytes.Equal(got, want) || !errors.Is(gotErr, wantErr) || len(gotTrace) != len(wantTrace) {
			t.Fatalf("limit %d, reads of %d, data %q: got %q %v %v, upstream %q %v %v",
				limit, readSize, data, got, gotTrace, gotErr, want, wantTrace, wantErr)
		}
		for k := range gotTrace {
			if gotTrace[k] != wantTrace[k] {
				t.Fatalf("limit %d, data %q: reads %v, upstream %v", limit, data, gotTrace, wantTrace)
			}
		}
	}
}

func BenchmarkLineLimitReader(b *testing.B) {
	line := append(bytes.Repeat([]byte("x"), 76), '\r', '\n')
	data := bytes.Repeat(line, 100<<10/len(line))
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		r := &lineLimitReader{R: bytes.NewReader(data), LineLimit: 2000}
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
	}
}
