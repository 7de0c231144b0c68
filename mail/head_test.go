package mail

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// streamBody is a Body read through a reader that returns one byte per
// Read (every piece boundary falls everywhere once), counting what was
// read.
type streamBody struct {
	data []byte
	read *int
}

func (b streamBody) Size() int64 { return int64(len(b.data)) }

func (b streamBody) Open() (io.ReadCloser, error) {
	return io.NopCloser(iotest.OneByteReader(countingReader{bytes.NewReader(b.data), b.read})), nil
}

type countingReader struct {
	r *bytes.Reader
	n *int
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += n
	return n, err
}

// Head of a body that is not in memory ends with the empty line that ends
// the header section (CRLF or bare LF line ends, at any piece boundary),
// reads no further than the piece it is in, and is at most n bytes.
func TestHeadStopsAtTheEndOfTheHeader(t *testing.T) {
	body := strings.Repeat("x", 200<<10)
	cases := []struct {
		name, msg, want string
		n               int
	}{
		{"crlf", "Subject: a\r\nFrom: b\r\n\r\n" + body, "Subject: a\r\nFrom: b\r\n\r\n", 1 << 20},
		{"lf", "Subject: a\nFrom: b\n\n" + body, "Subject: a\nFrom: b\n\n", 1 << 20},
		{"no header", "\r\n" + body, "\r\n", 1 << 20},
		{"folded", "Subject: a\r\n b\r\n\r\nbody", "Subject: a\r\n b\r\n\r\n", 1 << 20},
		{"no end", "Subject: a\r\nFrom: b\r\n", "Subject: a\r\nFrom: b\r\n", 1 << 20},
		{"longer than n", "Subject: " + strings.Repeat("y", 100) + "\r\n\r\nbody", "Subject: " + strings.Repeat("y", 11), 20},
	}
	for _, c := range cases {
		read := 0
		got, err := Head(streamBody{[]byte(c.msg), &read}, c.n)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if string(got) != c.want {
			t.Errorf("%s: Head = %q, want %q", c.name, got, c.want)
		}
		if read > len(c.want)+headPiece {
			t.Errorf("%s: read %d bytes for a header of %d", c.name, read, len(c.want))
		}
	}
	// In memory: the first n bytes, as before.
	if got, _ := Head(BytesBody("Subject: a\r\n\r\nbody"), 100); string(got) != "Subject: a\r\n\r\nbody" {
		t.Errorf("Head of a BytesBody = %q", got)
	}
}
