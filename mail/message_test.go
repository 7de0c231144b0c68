package mail

import (
	"bytes"
	"io"
	"testing"
)

// onDisk is a Body that is not in memory, as a spooled body will be.
type onDisk struct{ b []byte }

func (d onDisk) Size() int64                  { return int64(len(d.b)) }
func (d onDisk) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(d.b)), nil }

func TestBodiesReadAlikeWhateverTheirKind(t *testing.T) {
	for name, b := range map[string]Body{
		"bytes":          BytesBody("Subject: x\r\n\r\nbody\r\n"),
		"prepended":      Prepend([]byte("Subject: x\r\n"), BytesBody("\r\nbody\r\n")),
		"on disk":        onDisk{[]byte("Subject: x\r\n\r\nbody\r\n")},
		"prepended disk": Prepend([]byte("Subject: x\r\n"), onDisk{[]byte("\r\nbody\r\n")}),
	} {
		got, err := ReadBody(b)
		if err != nil || string(got) != "Subject: x\r\n\r\nbody\r\n" || b.Size() != int64(len(got)) {
			t.Errorf("%s: ReadBody = %q, %v; Size %d", name, got, err, b.Size())
		}
		r, _ := b.Open()
		streamed, _ := io.ReadAll(r)
		if string(streamed) != string(got) {
			t.Errorf("%s: Open reads %q, ReadBody %q", name, streamed, got)
		}
		if h, _ := Head(b, 10); string(h) != "Subject: x" {
			t.Errorf("%s: Head(10) = %q", name, h)
		}
	}
	if _, ok := Prepend([]byte("X: y\r\n"), BytesBody("z")).(BytesBody); !ok {
		t.Error("a header prepended to a body in memory is not a body in memory")
	}
}

func TestForKeepsOnlyTheAskedRecipientsAndSharesTheBody(t *testing.T) {
	env := &Envelope{ID: "Q", Recipients: []*Recipient{{Addr: "a@x"}, {Addr: "b@x"}, {Addr: "c@x", Key: 7}}}
	env.AssignKeys()
	keys := []int{env.Recipients[0].Key, env.Recipients[1].Key, env.Recipients[2].Key}
	if keys[2] != 7 || keys[0] == keys[1] || keys[0] == 7 || keys[1] == 7 || keys[0] == 0 || keys[1] == 0 {
		t.Fatalf("AssignKeys gave %v, want unique non-zero keys keeping 7", keys)
	}
	m := &Message{Envelope: env, Body: BytesBody("x")}
	a := m.For(7, keys[0])
	if len(a.Envelope.Recipients) != 2 || a.Envelope.Recipients[0].Addr != "a@x" || a.Envelope.Recipients[1].Addr != "c@x" {
		t.Fatalf("For(7, %d) = %+v, want a@x and c@x in the envelope's order", keys[0], a.Envelope.Recipients)
	}
	a.Envelope.Recipients[0].State = StateFailed
	if env.Recipients[0].State == StateFailed {
		t.Fatal("changing the attempt changed the queued envelope")
	}
	if a.Body.(BytesBody)[0] != 'x' || env.Recipient(keys[1]).Addr != "b@x" || env.Recipient(99) != nil {
		t.Fatal("the attempt does not share the body, or Recipient by key is wrong")
	}
}
