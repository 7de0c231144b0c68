package summary

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// sectionCorpus is messages of every shape the offsets must get right:
// nested multiparts, message/rfc822 parts (with a multipart inside),
// preambles and epilogues, empty parts, an unclosed multipart, boundary
// lines with trailing white space, LF line ends, a part without a header,
// a single-part message and one without a body.
var sectionCorpus = map[string]string{
	"multipart": multipart,
	"nested": "Subject: nested\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n" +
		"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n" +
		"inner preamble\r\n--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\ntext\r\n" +
		"--inner \t\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--\r\ninner epilogue\r\n" +
		"--outer\r\nContent-Type: message/rfc822\r\n\r\n" +
		"Subject: forwarded\r\nContent-Type: multipart/mixed; boundary=fwd\r\n\r\n" +
		"--fwd\r\nContent-Type: text/plain\r\n\r\nforwarded one\r\n--fwd\r\n\r\nno header here\r\n--fwd--\r\n" +
		"--outer\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n" +
		"--outer--\r\nouter epilogue\r\n",
	"lf":           "Subject: lf\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\none\ntwo\n--x\n\nthree\n--x--\n",
	"unclosed":     "Subject: unclosed\r\nContent-Type: multipart/mixed; boundary=u\r\n\r\n--u\r\n\r\nfirst\r\n--u\r\n\r\nlast, never closed\r\n",
	"empty parts":  "Content-Type: multipart/mixed; boundary=e\r\n\r\n--e\r\n\r\n--e\r\nContent-Type: text/plain\r\n\r\n\r\n--e--\r\n",
	"single":       "From: a@example.test\r\nSubject: single\r\n\r\nline 1\r\nline 2\r\n",
	"unterminated": "Subject: unterminated\r\n\r\nno line end",
	"no body":      "Subject: no body\r\n",
	"rfc822 root":  "Content-Type: message/rfc822\r\n\r\nSubject: inside\r\n\r\ninner text\r\n",
}

// TestSectionsMatchGoIMAP: for every message of the corpus and every
// section path up to three levels deep, the octets the offsets name are
// the ones go-imap's ExtractBodySection cuts out of the whole message
// (which it re-serializes for HEADER and MIME: compared as field lines).
func TestSectionsMatchGoIMAP(t *testing.T) {
	specs := []imap.PartSpecifier{imap.PartSpecifierNone, imap.PartSpecifierHeader, imap.PartSpecifierText, imap.PartSpecifierMIME}
	var paths [][]int
	paths = append(paths, nil)
	for a := 1; a <= 4; a++ {
		paths = append(paths, []int{a})
		for b := 1; b <= 3; b++ {
			paths = append(paths, []int{a, b})
			for c := 1; c <= 2; c++ {
				paths = append(paths, []int{a, b, c})
			}
		}
	}
	checked := 0
	for name, raw := range sectionCorpus {
		s, err := Compute(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if s.Body.End != int64(len(raw)) || s.Body.Start != 0 {
			t.Errorf("%s: the message is [%d, %d), want [0, %d)", name, s.Body.Start, s.Body.End, len(raw))
		}
		for _, path := range paths {
			for _, spec := range specs {
				if spec == imap.PartSpecifierMIME && len(path) == 0 {
					continue // RFC 9051: MIME needs a part number
				}
				item := &imap.FetchItemBodySection{Specifier: spec, Part: path}
				want := imapserver.ExtractBodySection(strings.NewReader(raw), item)
				if len(path) == 0 && spec == imap.PartSpecifierNone {
					want = []byte(raw) // go-imap rewrites the header; BODY[] is the message as stored
				}
				if name == "unclosed" && len(path) > 0 && path[0] == 2 && (spec == imap.PartSpecifierNone || spec == imap.PartSpecifierText) {
					// go-imap's extraction fails on a multipart that the
					// message ends (an unexpected EOF: nothing); its body
					// structure has the part's size, without the last line
					// end, as the offsets do (TestStructureSizesMatchGoIMAP).
					continue
				}
				start, end, ok := s.Section(path, spec)
				if !ok {
					t.Errorf("%s: BODY[%s]: the summary cannot say", name, sectionName(path, spec))
					continue
				}
				got := []byte(raw[start:end])
				if spec == imap.PartSpecifierHeader || spec == imap.PartSpecifierMIME {
					got, want = headerLines(got), headerLines(want)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s: BODY[%s] = [%d, %d) %q, go-imap %q", name, sectionName(path, spec), start, end, got, want)
				}
				checked++
			}
		}
	}
	t.Logf("%d sections compared", checked)
}

// headerLines is a header section as its field lines with CRLF ends and
// without the blank line (go-imap rewrites a header it cuts out).
func headerLines(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 {
		return nil
	}
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

func sectionName(path []int, spec imap.PartSpecifier) string {
	var parts []string
	for _, n := range path {
		parts = append(parts, fmt.Sprint(n))
	}
	if spec != imap.PartSpecifierNone {
		parts = append(parts, string(spec))
	}
	return strings.Join(parts, ".")
}

// TestStructureSizesMatchGoIMAP: the sizes and line counts of every part
// of the corpus are go-imap's (BODYSTRUCTURE), and a part's size is the
// length of its BODY[n] section.
func TestStructureSizesMatchGoIMAP(t *testing.T) {
	for name, raw := range sectionCorpus {
		s, err := Compute(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		want := imapserver.ExtractBodyStructure(strings.NewReader(raw))
		compareStructure(t, name, nil, s.Body.BodyStructure(), want)
	}
}

func compareStructure(t *testing.T, name string, path []int, got, want imap.BodyStructure) {
	t.Helper()
	where := fmt.Sprintf("%s part %v", name, path)
	switch w := want.(type) {
	case *imap.BodyStructureMultiPart:
		g, ok := got.(*imap.BodyStructureMultiPart)
		if !ok {
			t.Errorf("%s: %T, want a multipart", where, got)
			return
		}
		if len(w.Children) == 0 {
			return // go-imap shows none; the summary shows its empty part
		}
		if len(g.Children) != len(w.Children) {
			t.Errorf("%s: %d parts, want %d", where, len(g.Children), len(w.Children))
			return
		}
		for i := range w.Children {
			compareStructure(t, name, append(append([]int(nil), path...), i+1), g.Children[i], w.Children[i])
		}
	case *imap.BodyStructureSinglePart:
		g, ok := got.(*imap.BodyStructureSinglePart)
		if !ok {
			t.Errorf("%s: %T, want a single part", where, got)
			return
		}
		if g.Size != w.Size || g.MediaType() != w.MediaType() {
			t.Errorf("%s: %s of %d octets, want %s of %d", where, g.MediaType(), g.Size, w.MediaType(), w.Size)
		}
		if (w.Text == nil) != (g.Text == nil) || (w.Text != nil && w.Text.NumLines != g.Text.NumLines) {
			t.Errorf("%s: text lines %+v, want %+v", where, g.Text, w.Text)
		}
		if w.MessageRFC822 != nil {
			if g.MessageRFC822 == nil || g.MessageRFC822.NumLines != w.MessageRFC822.NumLines {
				t.Errorf("%s: message/rfc822 %+v, want %+v", where, g.MessageRFC822, w.MessageRFC822)
				return
			}
			compareStructure(t, name, append(path, 0), g.MessageRFC822.BodyStructure, w.MessageRFC822.BodyStructure)
		}
	}
}

// TestCRLFSize: the size with CRLF line ends counts a bare LF as two
// octets and ends an unterminated last line, as POP3 sends it.
func TestCRLFSize(t *testing.T) {
	for raw, want := range map[string]int64{
		"a\r\nb\r\n":      6,
		"a\nb\n":          6,
		"a\r\nb":          6,
		"a\nb\r":          6,
		"":                0,
		"x\r\n\n\r\n":     7,
		"Subject: s\n\n.": 17,
	} {
		s, err := Compute(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if s.CRLFSize != want {
			t.Errorf("%q: CRLF size %d, want %d", raw, s.CRLFSize, want)
		}
	}
}

// TestCRLFSizeAcrossReads: bare LFs split from their CR by the reads of
// a long line are counted right.
func TestCRLFSizeAcrossReads(t *testing.T) {
	long := strings.Repeat("y", 3*lineBuffer-1) + "\r\n" + strings.Repeat("z", lineBuffer) + "\n"
	s, err := Compute(strings.NewReader("Subject: long\r\n\r\n" + long))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len("Subject: long\r\n\r\n"+long) + 1); s.CRLFSize != want {
		t.Errorf("CRLF size %d, want %d", s.CRLFSize, want)
	}
	if s.Body.Lines != 2 {
		t.Errorf("lines %d, want 2", s.Body.Lines)
	}
}

// TestSectionOfAnOldSummary: a summary without offsets (version 0) says
// it cannot name a section.
func TestSectionOfAnOldSummary(t *testing.T) {
	s, err := Decode([]byte(`{"e":{},"b":{"t":"text","s":"plain","z":5}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.Section(nil, imap.PartSpecifierHeader); ok {
		t.Error("a version 0 summary named a section")
	}
}
