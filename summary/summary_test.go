package summary

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

const multipart = "From: Alice <alice@example.test>\r\n" +
	"To: bob@example.test, Carol <carol@example.test>\r\n" +
	"Subject: =?utf-8?q?caf=C3=A9?=\r\n" +
	"Message-Id: <m1@example.test>\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
	"Content-Type: multipart/mixed; boundary=b1\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"line one\r\nline two\r\n" +
	"--b1\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"Content-Disposition: attachment; filename=inner.eml\r\n" +
	"\r\n" +
	"From: inner@example.test\r\nSubject: inner\r\n\r\ninner body\r\n" +
	"--b1--\r\n"

func TestComputeMatchesGoIMAP(t *testing.T) {
	s, err := Compute(strings.NewReader(multipart))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.From(); got != "Alice <alice@example.test>" {
		t.Errorf("From = %q", got)
	}
	if got := s.Subject(); got != "café" {
		t.Errorf("Subject = %q", got)
	}
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Envelope.To) != 2 || back.Envelope.MessageID != "m1@example.test" {
		t.Errorf("envelope after decode: %+v", back.Envelope)
	}
	// go-imap's own (whole-body) extraction is the reference.
	want := imapserver.ExtractBodyStructure(strings.NewReader(multipart))
	got := back.Body.BodyStructure()
	wm, gm := want.(*imap.BodyStructureMultiPart), got.(*imap.BodyStructureMultiPart)
	if len(gm.Children) != len(wm.Children) || gm.Subtype != wm.Subtype {
		t.Fatalf("structure %+v, want %+v", gm, wm)
	}
	for i := range wm.Children {
		w, g := wm.Children[i].(*imap.BodyStructureSinglePart), gm.Children[i].(*imap.BodyStructureSinglePart)
		if g.Size != w.Size || g.MediaType() != w.MediaType() {
			t.Errorf("part %d: %s %d bytes, want %s %d", i+1, g.MediaType(), g.Size, w.MediaType(), w.Size)
		}
		if (w.Text == nil) != (g.Text == nil) || (w.Text != nil && w.Text.NumLines != g.Text.NumLines) {
			t.Errorf("part %d: text lines %+v, want %+v", i+1, g.Text, w.Text)
		}
	}
	inner := gm.Children[1].(*imap.BodyStructureSinglePart)
	if inner.MessageRFC822 == nil || inner.MessageRFC822.Envelope.Subject != "inner" {
		t.Errorf("message/rfc822 part: %+v", inner.MessageRFC822)
	}
	if d := inner.Disposition(); d == nil || d.Value != "attachment" || d.Params["filename"] != "inner.eml" {
		t.Errorf("disposition %+v", d)
	}
}

// countingReader counts what Compute reads, to show the body is read once
// and to its end.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestComputeStreamsALargeBody(t *testing.T) {
	const size = 20 << 20
	body := io.MultiReader(strings.NewReader("Subject: big\r\nContent-Type: application/octet-stream\r\n\r\n"),
		io.LimitReader(repeat('x'), size))
	cr := &countingReader{r: body}
	s, err := Compute(cr)
	if err != nil {
		t.Fatal(err)
	}
	if s.Body.Size != size {
		t.Errorf("size %d, want %d", s.Body.Size, size)
	}
}

func TestComputeBoundsAHugeHeaderAndDeepNesting(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("Subject: deep\r\nX-Long: ")
	b.Write(bytes.Repeat([]byte("y"), 2*MaxHeaderBytes))
	b.WriteString("\r\n")
	for i := 0; i < 3*MaxDepth; i++ {
		b.WriteString("Content-Type: message/rfc822\r\n\r\n")
	}
	b.WriteString("Subject: bottom\r\n\r\nend\r\n")
	s, err := Compute(&b)
	if err != nil {
		t.Fatal(err)
	}
	depth := 0
	for p := s.Body; p.Message != nil; p = p.Message.Body {
		depth++
	}
	if depth > MaxDepth {
		t.Errorf("parsed %d levels, bound %d", depth, MaxDepth)
	}
}

type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestDecodeEnvelopeIsTheEnvelopeOfDecode(t *testing.T) {
	raw := "From: A <a@example.test>\r\nTo: b@example.test\r\nSubject: hi\r\nMessage-ID: <x@y>\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\none\r\n--q--\r\n"
	s, err := Compute(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	full, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	env, err := DecodeEnvelope(enc)
	if err != nil || !reflect.DeepEqual(env, full.Envelope) || env.Subject != "hi" {
		t.Fatalf("DecodeEnvelope: %+v, %v; Decode's envelope %+v", env, err, full.Envelope)
	}
	if env, err := DecodeEnvelope([]byte("{}")); err != nil || env == nil {
		t.Fatalf("an empty summary: %v, %v", env, err)
	}
}

// A small message is summarized with buffers its size: a 4 KiB message
// took 64 KiB of read buffers (newLineReader, drain), the largest
// allocation of a delivery.
func TestComputeSmallMessageAllocatesLittle(t *testing.T) {
	msg := []byte("From: a@example.net\r\nTo: b@example.test\r\nSubject: small\r\n\r\n" + strings.Repeat("a line of the body of a small message\r\n", 100))
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Compute(bytes.NewReader(msg)); err != nil {
				b.Fatal(err)
			}
		}
	})
	if per := res.AllocedBytesPerOp(); per > 16<<10 {
		t.Errorf("Compute of a %d-octet message allocated %d bytes, want under 16 KiB", len(msg), per)
	}
}

func BenchmarkCompute4KiB(b *testing.B) {
	msg := []byte("From: a@example.net\r\nTo: b@example.test\r\nSubject: small\r\nDate: Thu, 3 Dec 2026 11:31:47 +0000\r\n\r\n" + strings.Repeat("a line of the body of a small message\r\n", 100))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compute(bytes.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
}
