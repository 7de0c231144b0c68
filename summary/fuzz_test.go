package summary

import (
	"strings"
	"testing"
)

// FuzzCompute: any input parses, and the offsets of every part are in
// order and inside the message: Start <= BodyStart <= End <= its
// enclosing part's End, a leaf's Size is End-BodyStart, the message is
// [0, len).
func FuzzCompute(f *testing.F) {
	for _, raw := range sectionCorpus {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := Compute(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if s.Body.Start != 0 || s.Body.End != int64(len(raw)) {
			t.Fatalf("the message is [%d, %d) of %d octets", s.Body.Start, s.Body.End, len(raw))
		}
		if s.CRLFSize < int64(len(raw)) {
			t.Fatalf("CRLF size %d below the size %d", s.CRLFSize, len(raw))
		}
		var walk func(p *Part, lo, hi int64)
		walk = func(p *Part, lo, hi int64) {
			if !(lo <= p.Start && p.Start <= p.BodyStart && p.BodyStart <= p.End && p.End <= hi) {
				t.Fatalf("part %s/%s at [%d, %d, %d) outside [%d, %d)", p.Type, p.Subtype, p.Start, p.BodyStart, p.End, lo, hi)
			}
			if p.Type != "multipart" && p.Size != p.End-p.BodyStart {
				t.Fatalf("part %s/%s: size %d, offsets say %d", p.Type, p.Subtype, p.Size, p.End-p.BodyStart)
			}
			for _, c := range p.Children {
				walk(c, p.BodyStart, p.End)
			}
			if p.Message != nil {
				walk(p.Message.Body, p.BodyStart, p.End)
			}
		}
		walk(s.Body, 0, int64(len(raw)))
	})
}
