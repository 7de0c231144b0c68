package storage

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/homing-mail/homing/mail"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, body := range [][]byte{{}, []byte("Subject: x\r\n\r\nhi\r\n"), bytes.Repeat([]byte("0123456789"), 100_000)} {
		v := frame(body)
		if len(v) != frameHeaderLen+len(body) || !framed(v) {
			t.Fatalf("frame of %d bytes: %d bytes, framed=%v", len(body), len(v), framed(v))
		}
		got, err := unframe(v, int64(len(body)))
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("unframe(frame(%d bytes)) = %d bytes, %v", len(body), len(got), err)
		}
		if got, err := unframe(v, -1); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("unframe without a recorded size = %d bytes, %v", len(got), err)
		}
		// A Body that is not in memory is read into the frame directly.
		fb, err := frameBody(mail.Prepend([]byte("Received: x\r\n"), mail.BytesBody(body)))
		if err != nil {
			t.Fatal(err)
		}
		want := append([]byte("Received: x\r\n"), body...)
		if got, err := unframe(fb, int64(len(want))); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frameBody of a prepended body: %d bytes, %v", len(got), err)
		}
	}
}

// Every way the stored bytes can differ from what was written is an error
// wrapping ErrDamaged that says what is wrong, never a body.
func TestUnframeRefusesDamage(t *testing.T) {
	body := []byte("From: a@example.test\r\nSubject: frames\r\n\r\nbody\r\n")
	good := frame(body)
	mutate := func(f func(v []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		v    []byte
		size int64
		want string
	}{
		{"empty value (a failed value-log read)", nil, -1, "empty value"},
		{"flipped body bit", mutate(func(v []byte) []byte { v[len(v)-3] ^= 0x20; return v }), -1, "CRC-32C mismatch"},
		{"overwritten checksum", mutate(func(v []byte) []byte { v[13] ^= 0xff; return v }), -1, "CRC-32C mismatch"},
		{"cut short", good[:len(good)-5], -1, "frame says"},
		{"run long", append(append([]byte(nil), good...), 'x'), -1, "frame says"},
		{"header cut short", good[:9], -1, "cut short"},
		{"bad magic", mutate(func(v []byte) []byte { v[1] = 'X'; return v }), -1, "magic"},
		{"unknown version", mutate(func(v []byte) []byte { v[3] = 9; return v }), -1, "version"},
		{"recorded size differs", good, int64(len(body) + 1), "recorded"},
		// A frame whose magic byte is damaged reads as an old body 16
		// bytes longer than recorded.
		{"damaged magic byte", mutate(func(v []byte) []byte { v[0] = 'F'; return v }), int64(len(body)), "unframed body"},
		{"old body shorter than recorded", body[:10], int64(len(body)), "unframed body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := unframe(tc.v, tc.size)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), tc.want) || got != nil {
				t.Fatalf("unframe = %d bytes, %v; want nothing and ErrDamaged saying %q", len(got), err, tc.want)
			}
			if mail.IsTemporary(err) {
				t.Fatalf("%v is temporary; damage does not go away by reading again", err)
			}
		})
	}
}

// A body stored before frames (bare RFC 5322 bytes) is still read: without
// a checksum, but checked against the size recorded beside it.
func TestUnframeAcceptsOldBodies(t *testing.T) {
	old := []byte("Received: from x\r\nSubject: old\r\n\r\nstored before frames\r\n")
	for _, size := range []int64{-1, int64(len(old))} {
		if got, err := unframe(old, size); err != nil || !bytes.Equal(got, old) {
			t.Fatalf("old body with recorded size %d: %q, %v", size, got, err)
		}
	}
}
