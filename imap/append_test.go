package imap_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"runtime"
	"strconv"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/homing-mail/homing/admin"
)

// bigMessage yields an RFC 5322 message of exactly size octets, CRLF
// lines of 78, generated as it is read (it is never whole in memory).
type bigMessage struct {
	size, off int64
	line      []byte
	buf       [80]byte
	digits    [20]byte
}

func newBigMessage(size int64) *bigMessage {
	return &bigMessage{size: size, line: []byte("Subject: thirty mebibytes\r\nContent-Type: text/plain\r\n\r\n")}
}

func (m *bigMessage) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && m.off < m.size {
		if len(m.line) == 0 {
			// The line's offset in 75 decimal digits, CRLF.
			digits := strconv.AppendInt(m.digits[:0], m.off, 10)
			l := m.buf[:0]
			for range 75 - len(digits) {
				l = append(l, '0')
			}
			m.line = append(append(l, digits...), '\r', '\n')
		}
		k := copy(p[n:], m.line[:min(int64(len(m.line)), m.size-m.off)])
		m.line = m.line[k:]
		n += k
		m.off += int64(k)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// TestAppendStreamsALargeMessage: a 30 MiB APPEND goes from the literal
// into a body file and is linked into the mailbox: everything the process
// allocates meanwhile (the client, the session, the actors, the store)
// stays under 4 MiB, and the stored message is the appended one, octet
// for octet.
func TestAppendStreamsALargeMessage(t *testing.T) {
	n := startNode(t, "big@example.test")
	c, _ := login(t, n.IMAPAddr(), "big@example.test")
	const size = 30 << 20
	want := sha256.New()
	src := io.TeeReader(newBigMessage(size), want)
	buf := make([]byte, 32<<10)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cmd := c.Append("INBOX", size, nil)
	if _, err := io.CopyBuffer(cmd, src, buf); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := cmd.Wait()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("APPEND of 30 MiB: %v", err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("APPEND of %d MiB: %.2f MiB allocated by the whole process", size>>20, float64(alloc)/(1<<20))
	if alloc > 4<<20 {
		t.Errorf("the APPEND allocated %d bytes; want a bounded amount (under 4 MiB) for a %d-byte message", alloc, size)
	}

	a := admin.NewClient("http://"+n.AdminAddr(), "")
	ms, err := a.Messages(t.Context(), "big@example.test")
	if err != nil || len(ms) != 1 {
		t.Fatalf("messages %v, %v", ms, err)
	}
	raw, err := a.RawMessage(t.Context(), "big@example.test", ms[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256.Sum256(raw); len(raw) != size || !bytes.Equal(got[:], want.Sum(nil)) {
		t.Fatalf("stored %d bytes (sha256 %x), appended %d (sha256 %x)", len(raw), got, size, want.Sum(nil))
	}
	if ms[0].UID != uint32(d.UID) {
		t.Errorf("APPENDUID %d, stored UID %d", d.UID, ms[0].UID)
	}
}

// TestAppendOverQuota: an APPEND that would take the mailbox over its
// quota is NO [OVERQUOTA] (RFC 9208 §4.2), small (the owner's check) or
// large (refused before it is written), and stores nothing; one that
// fits is stored.
func TestAppendOverQuota(t *testing.T) {
	n := startNode(t)
	a := admin.NewClient("http://"+n.AdminAddr(), "")
	const acct = "full@example.test"
	if _, err := a.CreateAccount(t.Context(), admin.CreateAccount{Address: acct, Password: pw, QuotaBytes: 200 << 10}); err != nil {
		t.Fatal(err)
	}
	c, _ := login(t, n.IMAPAddr(), acct)
	fits := "Subject: fits\r\n\r\n" + string(bytes.Repeat([]byte("x"), 150<<10)) + "\r\n"
	appendMsg(t, c, "INBOX", fits)
	small := "Subject: one too many\r\n\r\n" + string(bytes.Repeat([]byte("y"), 60<<10)) + "\r\n"
	large := "Subject: far too big\r\n\r\n" + string(bytes.Repeat([]byte("z"), 1<<20)) + "\r\n"
	for name, raw := range map[string]string{"inline": small, "in a file": large} {
		cmd := c.Append("INBOX", int64(len(raw)), nil)
		_, _ = cmd.Write([]byte(raw))
		_ = cmd.Close()
		if _, err := cmd.Wait(); imapCode(err) != imap.ResponseCodeOverQuota {
			t.Errorf("APPEND over the quota (%s, %d bytes): %v, want NO [OVERQUOTA]", name, len(raw), err)
		}
	}
	ms, err := a.Messages(t.Context(), acct)
	if err != nil || len(ms) != 1 {
		t.Fatalf("after the refused APPENDs: %d messages (%v), want the one that fits", len(ms), err)
	}
}
