package imap_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/homing-mail/homing/admin"
	homingimap "github.com/homing-mail/homing/imap"
)

// countingBackend counts the octets of messages the sessions read from
// the owners.
type countingBackend struct {
	homingimap.SystemBackend
	read atomic.Int64
}

func (b *countingBackend) ReadMessage(ctx context.Context, account, id string, off int64, length int, check bool) ([]byte, int64, error) {
	p, size, err := b.SystemBackend.ReadMessage(ctx, account, id, off, length, check)
	b.read.Add(int64(len(p)))
	return p, size, err
}

// rchar is what this process has read with read(2) and pread(2) so far
// (proc(5), /proc/self/io): the files of the store, the sockets.
func rchar(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no rchar in /proc/self/io")
	return 0
}

// lineSource is n octets of base64-looking lines of 76, CRLF-ended.
type lineSource struct{ left int64 }

func (s *lineSource) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.left))
	for i := range n {
		if (s.left-int64(i))%78 < 2 {
			p[i] = "\n\r"[(s.left-int64(i))%78%2]
		} else {
			p[i] = 'A' + byte((s.left-int64(i))%26)
		}
	}
	s.left -= int64(n)
	return n, nil
}

// TestFetchSectionsReadOnlyTheirOctets: in a 30 MiB message (a small
// text part, a 30 MiB base64 part, a forwarded message), FETCH of
// BODY[HEADER], HEADER.FIELDS, BODY[1], BODY[3.MIME], BODY[3.HEADER],
// BODY[3.TEXT], a partial BODY[2]<1000.500>, BINARY[1], BINARY.SIZE[1],
// RFC822.SIZE and BODYSTRUCTURE reads a few KiB of the message from the
// owner, and the process reads (read and pread: the store's files) under
// 1 MiB; each section is what go-imap cuts out of the whole message.
func TestFetchSectionsReadOnlyTheirOctets(t *testing.T) {
	n := startNode(t, "sections@example.test")
	backend := &countingBackend{SystemBackend: homingimap.SystemBackend{System: n.Actors()}}
	srv := homingimap.New(homingimap.Config{}, backend, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln, false) }()
	t.Cleanup(func() { srv.Close() })

	head := "From: a@example.test\r\nSubject: sections\r\nContent-Type: multipart/mixed; boundary=SEP\r\n\r\n" +
		"preamble\r\n--SEP\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"caf=C3=A9 on a small part\r\n--SEP\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	tail := "\r\n--SEP\r\nContent-Type: message/rfc822\r\n\r\nSubject: forwarded\r\nX-Inner: yes\r\n\r\nthe forwarded text\r\n--SEP--\r\n"
	const big = 30 << 20
	size := int64(len(head)) + big + int64(len(tail))
	c, _ := login(t, ln.Addr().String(), "sections@example.test")
	cmd := c.Append("INBOX", size, nil)
	if _, err := io.Copy(cmd, io.MultiReader(strings.NewReader(head), &lineSource{left: big}, strings.NewReader(tail))); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	sections := []*imap.FetchItemBodySection{
		{Specifier: imap.PartSpecifierHeader, Peek: true},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true},
		{Part: []int{1}, Peek: true},
		{Part: []int{3}, Specifier: imap.PartSpecifierMIME, Peek: true},
		{Part: []int{3}, Specifier: imap.PartSpecifierHeader, Peek: true},
		{Part: []int{3}, Specifier: imap.PartSpecifierText, Peek: true},
		{Part: []int{2}, Partial: &imap.SectionPartial{Offset: 1000, Size: 500}, Peek: true},
	}
	binary := &imap.FetchItemBinarySection{Part: []int{1}, Peek: true}
	opts := &imap.FetchOptions{BodySection: sections, BinarySection: []*imap.FetchItemBinarySection{binary},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{1}}}, RFC822Size: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}
	backend.read.Store(0)
	before := rchar(t)
	msgs, err := c.Fetch(imap.SeqSetNum(1), opts).Collect()
	read := rchar(t) - before
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %d messages, %v", len(msgs), err)
	}
	t.Logf("FETCH of %d sections of a %d MiB message: %d octets read from the owner, %d read by the process", len(sections)+2, size>>20, backend.read.Load(), read)
	if got := backend.read.Load(); got > 16<<10 {
		t.Errorf("the sections read %d octets of the message from the owner; want a few KiB", got)
	}
	if read > 1<<20 {
		t.Errorf("the process read %d octets during the FETCH; want under 1 MiB of a %d-octet message", read, size)
	}

	m := msgs[0]
	if m.RFC822Size != size {
		t.Errorf("RFC822.SIZE %d, want %d", m.RFC822Size, size)
	}
	if mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart); !ok || len(mp.Children) != 3 ||
		mp.Children[1].(*imap.BodyStructureSinglePart).Size != big {
		t.Errorf("BODYSTRUCTURE %+v, want 3 parts, the second of %d octets", m.BodyStructure, big)
	}
	raw, err := admin.NewClient("http://"+n.AdminAddr(), "").RawMessage(t.Context(), "sections@example.test", "1")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sections {
		want := imapserver.ExtractBodySection(bytes.NewReader(raw), s)
		if got := m.FindBodySection(s); !bytes.Equal(got, want) {
			t.Errorf("BODY[%v %s %v]<%v> = %q, go-imap cuts %q", s.Part, s.Specifier, s.HeaderFields, s.Partial, got, want)
		}
	}
	if got, want := m.FindBinarySection(binary), imapserver.ExtractBinarySection(bytes.NewReader(raw), binary); !bytes.Equal(got, want) || string(got) != "café on a small part" {
		t.Errorf("BINARY[1] = %q, want %q", got, want)
	}
	if got := m.BinarySectionSize; len(got) != 1 || got[0].Size != uint32(len("café on a small part")) {
		t.Errorf("BINARY.SIZE[1] = %+v", got)
	}
}
