package pop3

import (
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Messages the transaction tests store.
const (
	msg1 = "From: bob@example.net\r\nSubject: one\r\n\r\nHello.\r\n"
	// msg2's body has lines that begin with the termination octet.
	msg2 = "From: carol@example.net\r\nSubject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nlast line\r\n"
)

func startWithMessages(t *testing.T) *testServer {
	ts := startServer(t, Config{})
	ts.be.add(alice, "1", msg1)
	ts.be.add(alice, "2", msg2)
	return ts
}

func TestStatListAndUidlDescribeTheMaildrop(t *testing.T) {
	ts := startWithMessages(t)
	c := dial(t, ts.addr)
	if r := c.login(alice, alicePW); r != fmt.Sprintf("+OK maildrop has 2 messages (%d octets)", len(msg1)+len(msg2)) {
		t.Errorf("PASS: %q", r)
	}
	if r := c.cmd("STAT"); r != fmt.Sprintf("+OK 2 %d", len(msg1)+len(msg2)) {
		t.Errorf("STAT: %q", r)
	}
	if got, want := c.multi("LIST"), fmt.Sprintf("1 %d\r\n2 %d\r\n", len(msg1), len(msg2)); got != want {
		t.Errorf("LIST: %q, want %q", got, want)
	}
	if r := c.cmd("LIST 2"); r != fmt.Sprintf("+OK 2 %d", len(msg2)) {
		t.Errorf("LIST 2: %q", r)
	}
	if got := c.multi("UIDL"); got != "1 1\r\n2 2\r\n" {
		t.Errorf("UIDL: %q", got)
	}
	if r := c.cmd("UIDL 2"); r != "+OK 2 2" {
		t.Errorf("UIDL 2: %q", r)
	}
	for _, bad := range []string{"LIST 3", "LIST 0", "UIDL 3", "RETR 9", "TOP 3 0", "DELE 3"} {
		if r := c.cmd(bad); r != "-ERR "+textNoSuchMessage {
			t.Errorf("%s: %q", bad, r)
		}
	}
	for _, bad := range []string{"LIST x", "LIST 1 2", "STAT 1", "RETR", "TOP 1", "TOP 1 -1", "DELE", "NOOP x", "RSET 1"} {
		if r := c.cmd(bad); r != "-ERR "+textSyntax {
			t.Errorf("%s: %q", bad, r)
		}
	}
	c.ok("NOOP")
	c.ok("QUIT")
	c.closed()
}

func TestRetrSendsTheMessageDotStuffed(t *testing.T) {
	ts := startWithMessages(t)
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	if r := c.cmd("RETR 2"); r != fmt.Sprintf("+OK %d octets", len(msg2)) {
		t.Fatalf("RETR 2: %q", r)
	}
	raw := c.rawBody()
	// RFC 1939 §3: each line that begins with "." gets one more.
	want := "From: carol@example.net\r\nSubject: dots\r\n\r\n..\r\n...\r\n..hidden\r\nlast line\r\n"
	if raw != want {
		t.Errorf("on the wire: %q, want %q", raw, want)
	}
	if got := unstuff(raw); got != msg2 {
		t.Errorf("unstuffed: %q, want the message %q", got, msg2)
	}
	if got := c.multi("RETR 1"); got != msg1 {
		t.Errorf("RETR 1: %q", got)
	}
}

func TestSizesAreTheOctetsRetrSends(t *testing.T) {
	ts := startServer(t, Config{})
	// Stored forms a backend may have: bare LF line ends, no last line
	// end, dots at line starts. The fake lists CanonicalSize.
	stored := []string{
		msg1,
		"Subject: lf\n\n.line\nmore\n",
		"Subject: no end\r\n\r\nlast",
		"Subject: mixed\r\n\n.\r\n..\nend\r",
		strings.Repeat(".\r\n", 500),
	}
	for i, raw := range stored {
		ts.be.add(alice, strconv.Itoa(i+1), raw)
	}
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	var total int
	for i := range stored {
		r := c.cmd("LIST " + strconv.Itoa(i+1))
		listed, err := strconv.Atoi(strings.Fields(r)[2])
		if err != nil {
			t.Fatalf("LIST: %q", r)
		}
		got := c.multi("RETR " + strconv.Itoa(i+1))
		if len(got) != listed {
			t.Errorf("message %d: LIST says %d octets, RETR sent %d (%q)", i+1, listed, len(got), got)
		}
		if strings.Contains(strings.ReplaceAll(got, "\r\n", ""), "\n") {
			t.Errorf("message %d: a bare LF was sent: %q", i+1, got)
		}
		total += listed
	}
	if r := c.cmd("STAT"); r != fmt.Sprintf("+OK %d %d", len(stored), total) {
		t.Errorf("STAT: %q, want %d messages of %d octets", r, len(stored), total)
	}
}

func TestTopSendsTheHeaderAndNBodyLines(t *testing.T) {
	ts := startWithMessages(t)
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	head := "From: carol@example.net\r\nSubject: dots\r\n\r\n"
	for n, want := range map[int]string{
		0:   head,
		1:   head + ".\r\n",
		3:   head + ".\r\n..\r\n.hidden\r\n",
		100: msg2,
	} {
		if got := c.multi(fmt.Sprintf("TOP 2 %d", n)); got != want {
			t.Errorf("TOP 2 %d: %q, want %q", n, got, want)
		}
	}
	// The connection is still in step: TOP read no more than it sent.
	if got := c.multi("RETR 1"); got != msg1 {
		t.Errorf("RETR 1 after TOP: %q", got)
	}
}

func TestDeleMarksAndOnlyQuitDeletes(t *testing.T) {
	ts := startWithMessages(t)
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	if r := c.cmd("DELE 1"); r != "+OK message 1 deleted" {
		t.Fatalf("DELE 1: %q", r)
	}
	// Marked messages are out of every listing and cannot be named.
	if r := c.cmd("STAT"); r != fmt.Sprintf("+OK 1 %d", len(msg2)) {
		t.Errorf("STAT after DELE: %q", r)
	}
	if got := c.multi("LIST"); got != fmt.Sprintf("2 %d\r\n", len(msg2)) {
		t.Errorf("LIST after DELE: %q", got)
	}
	if got := c.multi("UIDL"); got != "2 2\r\n" {
		t.Errorf("UIDL after DELE: %q", got)
	}
	for _, cmd := range []string{"DELE 1", "RETR 1", "TOP 1 0", "LIST 1", "UIDL 1"} {
		if r := c.cmd(cmd); r != "-ERR "+textNoSuchMessage {
			t.Errorf("%s on a marked message: %q", cmd, r)
		}
	}
	// Nothing is deleted yet.
	if ids := ts.be.ids(alice); !slices.Equal(ids, []string{"1", "2"}) {
		t.Fatalf("before QUIT the maildrop has %v", ids)
	}
	if r := c.cmd("QUIT"); !strings.HasPrefix(r, "+OK") || !strings.Contains(r, "1 messages deleted") {
		t.Errorf("QUIT: %q", r)
	}
	c.closed()
	if calls := ts.be.deleteCalls(); len(calls) != 1 || !slices.Equal(calls[0], []string{"1"}) {
		t.Errorf("Delete calls %v, want one of [1]", calls)
	}
	if ids := ts.be.ids(alice); !slices.Equal(ids, []string{"2"}) {
		t.Errorf("after QUIT the maildrop has %v, want [2]", ids)
	}
	waitUnlocked(t, ts.be, alice)
}

func TestRsetUnmarksEveryMessage(t *testing.T) {
	ts := startWithMessages(t)
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	c.ok("DELE 1")
	c.ok("DELE 2")
	if r := c.cmd("STAT"); r != "+OK 0 0" {
		t.Errorf("STAT: %q", r)
	}
	if r := c.cmd("RSET"); r != fmt.Sprintf("+OK maildrop has 2 messages (%d octets)", len(msg1)+len(msg2)) {
		t.Errorf("RSET: %q", r)
	}
	if got := c.multi("RETR 1"); got != msg1 {
		t.Errorf("RETR 1 after RSET: %q", got)
	}
	c.ok("QUIT")
	c.closed()
	if calls := ts.be.deleteCalls(); len(calls) != 0 {
		t.Errorf("Delete called %v after RSET", calls)
	}
	if ids := ts.be.ids(alice); len(ids) != 2 {
		t.Errorf("maildrop %v", ids)
	}
}

func TestDisconnectWithoutQuitDeletesNothing(t *testing.T) {
	ts := startWithMessages(t)
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	c.ok("DELE 1")
	c.ok("DELE 2")
	c.conn.Close()
	// RFC 1939 §6: without QUIT no UPDATE state; the lock is released.
	waitUnlocked(t, ts.be, alice)
	if calls := ts.be.deleteCalls(); len(calls) != 0 {
		t.Errorf("Delete called %v without QUIT", calls)
	}
	if ids := ts.be.ids(alice); len(ids) != 2 {
		t.Errorf("maildrop %v", ids)
	}
}

func TestQuitWhoseDeleteFailsAnswersErrAndDeletesNothing(t *testing.T) {
	ts := startWithMessages(t)
	ts.be.set(func(b *fakeBackend) { b.deleteErr = fmt.Errorf("disk: %w", errTemporaryForTest) })
	c := dial(t, ts.addr)
	c.login(alice, alicePW)
	c.ok("DELE 2")
	if r := c.cmd("QUIT"); r != "-ERR [SYS/TEMP] some deleted messages not removed" {
		t.Errorf("QUIT: %q", r)
	}
	c.closed()
	waitUnlocked(t, ts.be, alice)
	if ids := ts.be.ids(alice); len(ids) != 2 {
		t.Errorf("maildrop %v", ids)
	}
}

func TestPipelinedCommandsAreAnsweredInOrder(t *testing.T) {
	ts := startWithMessages(t)
	c := dial(t, ts.addr)
	// RFC 2449 §6.6: the client may send commands without waiting.
	c.send("CAPA\r\nUSER " + alice + "\r\nPASS " + alicePW + "\r\nSTAT\r\nLIST\r\nRETR 2\r\nTOP 1 0\r\nDELE 1\r\nUIDL\r\nNOOP\r\nQUIT\r\n")
	if r := c.line(); r != "+OK capability list follows" {
		t.Fatalf("CAPA: %q", r)
	}
	c.rawBody()
	if r := c.line(); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("USER: %q", r)
	}
	if r := c.line(); !strings.HasPrefix(r, "+OK maildrop has 2") {
		t.Fatalf("PASS: %q", r)
	}
	if r := c.line(); r != fmt.Sprintf("+OK 2 %d", len(msg1)+len(msg2)) {
		t.Fatalf("STAT: %q", r)
	}
	c.line()
	if got := c.rawBody(); got != fmt.Sprintf("1 %d\r\n2 %d\r\n", len(msg1), len(msg2)) {
		t.Fatalf("LIST: %q", got)
	}
	c.line()
	if got := unstuff(c.rawBody()); got != msg2 {
		t.Fatalf("RETR 2: %q", got)
	}
	c.line()
	if got := c.rawBody(); got != "From: bob@example.net\r\nSubject: one\r\n\r\n" {
		t.Fatalf("TOP 1 0: %q", got)
	}
	if r := c.line(); r != "+OK message 1 deleted" {
		t.Fatalf("DELE: %q", r)
	}
	c.line()
	if got := c.rawBody(); got != "2 2\r\n" {
		t.Fatalf("UIDL: %q", got)
	}
	if r := c.line(); r != "+OK" {
		t.Fatalf("NOOP: %q", r)
	}
	if r := c.line(); !strings.Contains(r, "1 messages deleted") {
		t.Fatalf("QUIT: %q", r)
	}
	c.closed()
	if ids := ts.be.ids(alice); !slices.Equal(ids, []string{"2"}) {
		t.Errorf("maildrop %v", ids)
	}
}

func TestUidlIsStableAcrossSessionsAndValidForAnyID(t *testing.T) {
	ts := startServer(t, Config{})
	ids := []string{"7", "has space", strings.Repeat("x", 80), "ünïcode"}
	for _, id := range ids {
		ts.be.add(alice, id, msg1)
	}
	var first string
	for i := range 2 {
		c := dial(t, ts.addr)
		c.login(alice, alicePW)
		got := c.multi("UIDL")
		c.ok("QUIT")
		c.closed()
		waitUnlocked(t, ts.be, alice)
		if i == 0 {
			first = got
		} else if got != first {
			t.Errorf("UIDL changed between sessions:\n%q\n%q", first, got)
		}
	}
	lines := strings.Split(strings.TrimSuffix(first, "\r\n"), "\r\n")
	if len(lines) != len(ids) {
		t.Fatalf("UIDL: %q", first)
	}
	seen := map[string]bool{}
	for i, l := range lines {
		n, uid, ok := strings.Cut(l, " ")
		if !ok || n != strconv.Itoa(i+1) || !validUniqueID(uid) || seen[uid] {
			t.Errorf("UIDL line %q: want %d and a unique 1-70 octet id of 0x21-0x7E", l, i+1)
		}
		seen[uid] = true
	}
	if !strings.HasPrefix(lines[0], "1 7") {
		t.Errorf("a valid id is not sent as it is: %q", lines[0])
	}
}

// TestRetrStreamsALargeMessage sends a 30 MiB message that the backend
// generates as it is read: the session must pass it through in pieces.
// The bytes allocated while it is sent (by the whole process, the client
// included) stay far below the message's size.
func TestRetrStreamsALargeMessage(t *testing.T) {
	const size = 30 << 20
	ts := startServer(t, Config{})
	line := ".a line of the body that begins with a dot, 64 octets long....\r\n"
	// No bare LF: the size listed is the stored size.
	ts.be.addSized(alice, "big", "", size)
	ts.be.set(func(b *fakeBackend) {
		b.openMessage = func(string) (io.ReadCloser, error) {
			return io.NopCloser(io.LimitReader(&repeatReader{s: line}, size)), nil
		}
	})
	c := dial(t, ts.addr)
	c.login(alice, alicePW)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if r := c.cmd("RETR 1"); r != fmt.Sprintf("+OK %d octets", size) {
		t.Fatalf("RETR: %q", r)
	}
	h := sha256.New()
	var got int64
	buf := make([]byte, 0, 128)
	for {
		c.conn.SetReadDeadline(time.Now().Add(ioWindow))
		l, err := c.r.ReadSlice('\n')
		if err != nil {
			t.Fatalf("after %d octets: %v", got, err)
		}
		if string(l) == ".\r\n" {
			break
		}
		if l[0] != '.' {
			t.Fatalf("a line that begins with a dot was not stuffed: %q", l)
		}
		buf = append(buf[:0], l[1:]...)
		h.Write(buf)
		got += int64(len(buf))
	}
	runtime.ReadMemStats(&after)
	if got != size {
		t.Fatalf("received %d octets, want %d", got, size)
	}
	want := sha256.New()
	io.Copy(want, io.LimitReader(&repeatReader{s: line}, size))
	if string(h.Sum(nil)) != string(want.Sum(nil)) {
		t.Error("the message received differs from the message stored")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("%d octets allocated while a %d octet message was sent: it was not streamed", alloc, size)
	}
	c.ok("QUIT")
}

// repeatReader yields s for ever.
type repeatReader struct {
	s   string
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}
