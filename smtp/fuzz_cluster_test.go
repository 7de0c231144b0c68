package smtp

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/homing-mail/homing/mail"
)

// FuzzEnvelopeRecord feeds splitEnvelopeRecord (the first DATA line of a
// cluster transfer, from a member) with arbitrary data: it never panics; a
// record it accepts has a usable id and leaves the rest of the message
// intact; data without the record prefix is left as it is; a record it
// writes is read back to the same envelope.
func FuzzEnvelopeRecord(f *testing.F) {
	env := &mail.Envelope{ID: "06H37A2RTR6T6QNR1N0DFMAE", From: "a@b.test", EnvID: "x",
		Recipients: []*mail.Recipient{{Key: 1, Addr: "c@d.test", Notify: []mail.Notify{mail.NotifyFailure}, ORcpt: "rfc822;c@d.test"}}}
	rec, err := encodeEnvelopeRecord(env)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append(rec, "Subject: x\r\n\r\nbody\r\n"...))
	f.Add([]byte("X-Homing-Envelope: \r\n"))
	f.Add([]byte("X-Homing-Envelope: " + base64.StdEncoding.EncodeToString([]byte(`{"id":"a/b"}`)) + "\r\nx"))
	f.Add([]byte("X-Homing-Envelope: !!!\r\n"))
	f.Add([]byte("Subject: not a transfer\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, rest, ok, err := splitEnvelopeRecord(data)
		switch {
		case !ok:
			if err != nil || !bytes.Equal(rest, data) || got != nil {
				t.Fatalf("no record: env %v, rest changed %v, err %v", got, !bytes.Equal(rest, data), err)
			}
		case err == nil:
			if got.ID == "" || len(got.ID) > 64 || bytes.ContainsAny([]byte(got.ID), "/\r\n") {
				t.Fatalf("accepted a record with id %q", got.ID)
			}
			if !bytes.HasSuffix(data, rest) || len(rest) >= len(data) {
				t.Fatalf("the rest is not the data after the record")
			}
			again, err := encodeEnvelopeRecord(got)
			if err != nil {
				t.Fatalf("an accepted envelope does not encode: %v", err)
			}
			back, _, ok, err := splitEnvelopeRecord(again)
			if !ok || err != nil || back.ID != got.ID || back.From != got.From || len(back.Recipients) != len(got.Recipients) {
				t.Fatalf("an accepted envelope does not read back: %+v, %v", back, err)
			}
		}
	})
}

// FuzzClusterAuth drives the server side of an X-HOMING-CLUSTER exchange
// with arbitrary responses: it never panics, never authenticates a
// response that is not the HMAC of its own challenge, and authenticates
// the real client's answer.
func FuzzClusterAuth(f *testing.F) {
	auth := NewClusterAuth("the-cluster-secret-123", "homing", "be1")
	f.Add([]byte("be1\x00" + "00"))
	f.Add([]byte("\x00"))
	f.Add([]byte("be1"))
	f.Add(bytes.Repeat([]byte("a"), 300))
	f.Fuzz(func(t *testing.T, response []byte) {
		var authed string
		s := &clusterServer{a: auth, done: func(node string) error {
			authed = node
			if node == "" {
				return ErrMalformedClusterAuth
			}
			return nil
		}}
		challenge, done, err := s.Next(nil)
		if err != nil || done || len(challenge) != 32 {
			t.Fatalf("first step: %d-byte challenge, done %v, %v", len(challenge), done, err)
		}
		if _, done, err := s.Next(response); done && err == nil && authed != "" {
			t.Fatalf("a fuzzed response authenticated %q", authed)
		}

		real := &clusterServer{a: auth, done: func(node string) error { authed = node; return nil }}
		ch, _, _ := real.Next(nil)
		answer, err := auth.Client().Next(ch)
		if err != nil {
			t.Fatal(err)
		}
		authed = ""
		if _, done, err := real.Next(answer); !done || err != nil || authed != "be1" {
			t.Fatalf("the real answer: done %v, %v, authed %q", done, err, authed)
		}
	})
}
