package summary

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// sameEnvelope compares what IMAP writes of two envelopes: nil and empty
// lists alike (both are NIL on the wire), dates as instants with offsets.
func sameEnvelope(a, b *imap.Envelope) bool {
	norm := func(e *imap.Envelope) string {
		c := *e
		d := ""
		if !c.Date.IsZero() {
			d = c.Date.Format(time.RFC3339Nano)
		}
		c.Date = time.Time{}
		for _, l := range []*[]imap.Address{&c.From, &c.Sender, &c.ReplyTo, &c.To, &c.Cc, &c.Bcc} {
			if len(*l) == 0 {
				*l = nil
			}
		}
		if len(c.InReplyTo) == 0 {
			c.InReplyTo = nil
		}
		j, _ := json.Marshal(c)
		return d + string(j)
	}
	return norm(a) == norm(b)
}

func TestBinaryFormRoundTripsWhatJSONDid(t *testing.T) {
	for _, raw := range sectionCorpus {
		s, err := Compute(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		enc, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !isBinary(enc) {
			t.Fatalf("Encode wrote the old form: %q", enc[:min(len(enc), 20)])
		}
		old, err := json.Marshal(s) // the form stored before
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"binary": enc, "json": old} {
			full, err := Decode(b)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			env, err := DecodeEnvelope(b)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !sameEnvelope(full.Envelope, s.Envelope) || !sameEnvelope(env, s.Envelope) {
				t.Fatalf("%s: envelope %+v / %+v, want %+v", name, full.Envelope, env, s.Envelope)
			}
			fj, _ := json.Marshal(full.Body)
			sj, _ := json.Marshal(s.Body)
			if string(fj) != string(sj) || full.Version != s.Version || full.CRLFSize != s.CRLFSize {
				t.Fatalf("%s: body %s v%d %d, want %s v%d %d", name, fj, full.Version, full.CRLFSize, sj, s.Version, s.CRLFSize)
			}
		}
	}
}

func TestBinaryEnvelopeKeepsEveryField(t *testing.T) {
	e := &imap.Envelope{
		Date:      time.Date(2026, 12, 2, 9, 30, 1, 5, time.FixedZone("", -7*3600-30*60)),
		Subject:   "Grüße ( \"quoted\" ) \r\n",
		From:      []imap.Address{{Name: "Ann", Mailbox: "ann", Host: "example.test"}},
		Sender:    []imap.Address{{Mailbox: "s", Host: "h"}},
		ReplyTo:   []imap.Address{{Name: "R", Mailbox: "r", Host: "h"}},
		To:        []imap.Address{{Name: "group"}, {Mailbox: "a", Host: "b"}, {}},
		Cc:        []imap.Address{{Mailbox: "c", Host: "d"}},
		Bcc:       []imap.Address{{Mailbox: "e", Host: "f"}},
		InReplyTo: []string{"a@b", "c@d"},
		MessageID: "m@id",
	}
	enc, err := (&Summary{Envelope: e, Body: &Part{Type: "text", Subtype: "plain"}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEnvelope(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !sameEnvelope(got, e) || !got.Date.Equal(e.Date) {
		t.Fatalf("got %+v, want %+v", got, e)
	}
	if _, off := got.Date.Zone(); off != -7*3600-30*60 {
		t.Fatalf("zone offset %d", off)
	}
}

// A damaged summary is an error, never a silently empty envelope.
func TestTruncatedBinarySummaryIsAnError(t *testing.T) {
	s, err := Compute(strings.NewReader("From: a@b\r\nSubject: x\r\nTo: c@d\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := split(enc)
	if err != nil {
		t.Fatal(err)
	}
	envEnd := len(enc) - (len(enc) - len(magic) - 1 - len(env))
	for n := len(magic); n < envEnd; n++ {
		if _, err := DecodeEnvelope(enc[:n]); err == nil {
			t.Fatalf("a summary cut at %d of %d decoded", n, len(enc))
		}
		if _, err := Decode(enc[:n]); err == nil {
			t.Fatalf("Decode of a summary cut at %d decoded", n)
		}
	}
}

// FuzzDecodeEnvelope: any bytes decode or fail, never panic.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, raw := range sectionCorpus {
		s, err := Compute(strings.NewReader(raw))
		if err != nil {
			f.Fatal(err)
		}
		enc, err := s.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeEnvelope(b)
		_, _ = Decode(b)
	})
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	raw := "From: Ann Example <ann@example.test>\r\nTo: Bob <bob@example.test>, c@example.test\r\nSubject: a subject of some length\r\nDate: Wed, 02 Dec 2026 09:30:00 +0100\r\nMessage-ID: <1234@example.test>\r\nContent-Type: multipart/alternative; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\none\r\n--q\r\nContent-Type: text/html\r\n\r\n<p>one</p>\r\n--q--\r\n"
	s, err := Compute(strings.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	enc, _ := s.Encode()
	old, _ := json.Marshal(s)
	for name, v := range map[string][]byte{"binary": enc, "json": old} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := DecodeEnvelope(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
