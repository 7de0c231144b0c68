package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	stdmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gosmtp "github.com/emersion/go-smtp"
	"golang.org/x/sys/unix"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// mountTmpfs mounts a tmpfs of size bytes for the test (unmounted at its
// end) and returns a directory on it, or skips the test, saying why,
// where mounting is not permitted (it needs root or CAP_SYS_ADMIN; CI runs
// as root and runs it).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			t.Skipf("mounting a tmpfs is not permitted here (needs root or CAP_SYS_ADMIN): %v", err)
		}
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	// Registered after TempDir's: runs before its removal.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Frsize
}

// allocate makes a file of n bytes, allocated at once.
func allocate(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n > 0 {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, n); err != nil {
			t.Fatalf("fallocate %s: %v", path, err)
		}
	}
}

// sendMarked sends one message with subject marker to rcpt in a session
// of its own; the error is the server's reply when it refused.
func sendMarked(addr, rcpt, marker string, size int) error {
	c, err := gosmtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("disk.test"); err != nil {
		return err
	}
	msg := append([]byte("From: fill@disk.test\r\nTo: "+rcpt+"\r\nSubject: "+marker+"\r\n\r\n"), filler(size)...)
	if err := sendOn(c, rcpt, msg); err != nil {
		return err
	}
	return c.Quit()
}

// noSpaceReply reports whether err is the 452 4.3.1 of a full store.
func noSpaceReply(err error) bool {
	var se *gosmtp.SMTPError
	return errors.As(err, &se) && se.Code == 452 && se.EnhancedCode == gosmtp.EnhancedCode{4, 3, 1}
}

// The disk-full probe of issue #9 with a real process: a 96 MiB tmpfs as
// --data, filled with 256 KiB messages over SMTP. Before, the node died
// with SIGBUS in badger's mapped value-log write and again at every start
// on the still-full disk. Now: below --min-free-space MAIL FROM answers
// 452 4.3.1, the node keeps running and says why (readiness, node info,
// the metric, one log line); another program taking the last byte changes
// nothing but the refusals; a restart on the full disk starts and serves
// reads; once the test frees space, new mail is accepted without a
// restart and the mail that waited is delivered; every message that got
// 250 is in its mailbox exactly once.
func TestDiskFullRealProcess(t *testing.T) {
	data := mountTmpfs(t, 96<<20)
	// Room that the test gives back at the end, taken before the node
	// starts: the mail fills what is left.
	spare := filepath.Join(data, "spare")
	allocate(t, spare, 28<<20)
	p := testkit.StartProcessIn(t, homingBin, "disk", data, "--partitions", "2", "--demo=false",
		"--min-free-space", "24MiB", "--max-message-size", "1048576", "--retry-min", "1s", "--retry-max", "2s",
		"--log-level", "info")
	c := admin.NewClient("http://"+p.Admin, "")
	ctx := context.Background()
	const rcpt = "fill@example.test"
	if _, err := c.CreateAccount(ctx, admin.CreateAccount{Address: rcpt, Password: "disk-test-pw"}); err != nil {
		t.Fatal(err)
	}
	crashed := func() string {
		log := p.Log()
		for _, bad := range []string{"SIGBUS", "fatal error", "panic:", "unexpected fault address"} {
			if strings.Contains(log, bad) {
				return bad
			}
		}
		return ""
	}

	// Fill it with mail.
	const size = 256 << 10
	acked := map[string]bool{}
	refusedAt452 := 0
	i := 0
	for ; i < 1000 && refusedAt452 < 20; i++ {
		marker := fmt.Sprintf("disk-%04d", i)
		switch err := sendMarked(p.SMTP, rcpt, marker, size); {
		case err == nil:
			acked[marker] = true
		case noSpaceReply(err):
			refusedAt452++
		default:
			t.Fatalf("message %d: %v, want 250 or 452 4.3.1\n%s", i, err, p.Log())
		}
	}
	if refusedAt452 < 20 || len(acked) < 40 {
		t.Fatalf("%d messages sent: %d accepted, %d answered 452 4.3.1", i, len(acked), refusedAt452)
	}
	t.Logf("filling: %d messages of 256 KiB accepted, then 452 4.3.1 (%d times); %d MiB free",
		len(acked), refusedAt452, freeBytes(t, data)>>20)
	if bad := crashed(); bad != "" || !p.Running() {
		t.Fatalf("the node crashed (%q):\n%s", bad, p.Log())
	}
	// Small messages (bodies in badger's value log, the path that met
	// the full disk with SIGBUS) are refused the same way.
	for j := 0; j < 5; j++ {
		if err := sendMarked(p.SMTP, rcpt, fmt.Sprintf("small-%d", j), 2<<10); !noSpaceReply(err) {
			t.Fatalf("a small message below the limit: %v, want 452 4.3.1", err)
		}
	}

	// The admin API says why.
	code, checks := readyz(t, p.Admin)
	if code != 503 || checks["storage"].OK || !strings.Contains(checks["storage"].Detail, "below the 24.0 MiB limit") {
		t.Errorf("/readyz: %d, storage check %+v", code, checks["storage"])
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != 1 || len(nodes[0].Stores) != 2 {
		t.Fatalf("nodes: %+v, %v", nodes, err)
	}
	for _, s := range nodes[0].Stores {
		// Free: what statfs says; the last message refused was refused
		// for its own bytes in flight, so the disk can be just above.
		if !s.Low || s.MinFreeBytes != 24<<20 || s.FreeBytes >= 26<<20 {
			t.Errorf("store %+v: want low, about 24 MiB free", s)
		}
	}
	_, samples := scrape(t, p.Admin)
	for _, want := range []string{`homing_store_free_bytes{store="queue"}`, `homing_store_free_bytes{store="accounts"}`,
		`homing_store_space_low{store="queue"} 1`, `homing_store_min_free_bytes{store="accounts"} 2.5165824e+07`} {
		if count(samples, want) != 1 {
			t.Errorf("no sample %s", want)
		}
	}
	if n := strings.Count(p.Log(), "free space below the limit"); n != 1 {
		t.Errorf("%d log lines about the limit, want 1 (once, not per message)", n)
	}
	for _, perMessage := range []string{"writing the message failed", "queue store write failed", "local delivery failed"} {
		if strings.Contains(p.Log(), perMessage) {
			t.Errorf("the log has %q lines", perMessage)
		}
	}

	// Another program takes every byte left: the node frees its reserve
	// file for its own writes and goes on refusing, reading, running.
	other := filepath.Join(data, "other")
	allocate(t, other, freeBytes(t, data))
	wait.For(t, 10*time.Second, func() bool { return strings.Contains(p.Log(), "released the space reserve") },
		"the node releases its reserve when the disk is full")
	for j := 0; j < 5; j++ {
		if err := sendMarked(p.SMTP, rcpt, fmt.Sprintf("full-%d", j), 2<<10); !noSpaceReply(err) {
			t.Fatalf("a message on the full disk: %v, want 452 4.3.1", err)
		}
	}
	// IMAP and POP3 on the full disk: APPEND is a temporary NO, what a
	// user does to free space (STORE \Deleted and EXPUNGE, DELE and
	// QUIT) works.
	for _, subject := range mailboxOpsOnAFullDisk(t, p, rcpt, "disk-test-pw") {
		delete(acked, subject)
	}
	for _, perOp := range []string{"mailbox operation failed", "mailbox change not synced"} {
		if strings.Contains(p.Log(), perOp) {
			t.Errorf("the log has %q lines", perOp)
		}
	}
	ms, err := c.Messages(ctx, rcpt)
	if err != nil || len(ms) == 0 {
		t.Fatalf("reading the mailbox on the full disk: %d messages, %v", len(ms), err)
	}
	if raw, err := c.RawMessage(ctx, rcpt, ms[0].ID); err != nil || len(raw) < size {
		t.Fatalf("reading a message on the full disk: %d bytes, %v", len(raw), err)
	}

	// A restart on the still-full disk starts and serves reads.
	p.Stop()
	if bad := crashed(); bad != "" {
		t.Fatalf("the node crashed (%q) before the restart:\n%s", bad, p.Log())
	}
	t.Logf("restarting with %d KiB free", freeBytes(t, data)>>10)
	p.Start()
	c = admin.NewClient("http://"+p.Admin, "")
	ms2, err := c.Messages(ctx, rcpt)
	if err != nil || len(ms2) < len(ms) {
		t.Fatalf("after the restart: %d messages (%d before), %v", len(ms2), len(ms), err)
	}
	if raw, err := c.RawMessage(ctx, rcpt, ms2[len(ms2)-1].ID); err != nil || len(raw) < size {
		t.Fatalf("reading after the restart: %d bytes, %v", len(raw), err)
	}
	if err := sendMarked(p.SMTP, rcpt, "after-restart", 2<<10); !noSpaceReply(err) {
		t.Fatalf("after the restart on the full disk: %v, want 452 4.3.1", err)
	}

	// Space is freed: new mail is accepted without a restart, and what
	// waited in the queue (Local Delivery deferred, 452 4.3.1) is
	// delivered.
	for _, f := range []string{other, spare} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, func() bool {
		err := sendMarked(p.SMTP, rcpt, fmt.Sprintf("freed-%04d", i), size)
		if err == nil {
			acked[fmt.Sprintf("freed-%04d", i)] = true
		}
		i++
		return err == nil
	}, "new mail accepted after space was freed")
	wait.For(t, 30*time.Second, func() bool {
		q, err := c.Queue(ctx)
		return err == nil && len(q) == 0
	}, "the queue drains")
	code, checks = readyz(t, p.Admin)
	if code != 200 {
		t.Errorf("/readyz after space was freed: %d: %s", code, failed(checks))
	}

	// Every 250 stored exactly once.
	ms, err = c.Messages(ctx, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range ms {
		raw, err := c.RawMessage(ctx, rcpt, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := stdmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("message %s does not parse: %v", m.ID, err)
		}
		seen[msg.Header.Get("Subject")]++
	}
	for marker := range acked {
		if seen[marker] != 1 {
			t.Errorf("%s got 250 and is stored %d times", marker, seen[marker])
		}
	}
	for marker, n := range seen {
		if !acked[marker] || n != 1 {
			t.Errorf("%s is stored %d times (acknowledged: %v)", marker, n, acked[marker])
		}
	}
	if bad := crashed(); bad != "" || !p.Running() {
		t.Errorf("the node crashed (%q)", bad)
	}
	if t.Failed() {
		t.Logf("node log:\n%s", p.Log())
	}
}

// mailboxOpsOnAFullDisk runs IMAP and POP3 against p, whose disk is full:
// an APPEND answers NO [UNAVAILABLE] with the reason (temporary, nothing
// stored); the first message is flagged \Deleted and expunged over IMAP,
// the next one deleted over POP3 (DELE, QUIT). It returns the subjects
// of the two deleted messages.
func mailboxOpsOnAFullDisk(t *testing.T, p *testkit.Process, user, pass string) []string {
	t.Helper()
	c, err := imapclient.DialInsecure(p.IMAP, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("IMAP LOGIN on the full disk: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("IMAP SELECT on the full disk: %v", err)
	}
	raw := "From: imap@disk.test\r\nSubject: appended on a full disk\r\n\r\nnot stored\r\n"
	cmd := c.Append("INBOX", int64(len(raw)), nil)
	if _, err := cmd.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	var ie *imap.Error
	if _, err := cmd.Wait(); !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeUnavailable ||
		!strings.Contains(ie.Text, "Insufficient system storage") {
		t.Errorf("IMAP APPEND on the full disk: %v, want NO [UNAVAILABLE] Insufficient system storage...", err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope == nil {
		t.Fatalf("IMAP FETCH on the full disk: %v, %v", msgs, err)
	}
	gone := []string{msgs[0].Envelope.Subject}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatalf("IMAP STORE +FLAGS \\Deleted on the full disk: %v", err)
	}
	exp, err := c.Expunge().Collect()
	if err != nil || len(exp) != 1 {
		t.Fatalf("IMAP EXPUNGE on the full disk: %v expunged, %v", exp, err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || st.NumMessages == nil || *st.NumMessages != sel.NumMessages-1 {
		t.Fatalf("IMAP STATUS after the expunge: %+v, %v; want %d messages", st, err, sel.NumMessages-1)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}

	pc, ok := dialPOP3Login(t, p.POP3, user, pass)
	if !strings.HasPrefix(ok, "+OK") {
		t.Fatalf("POP3 PASS on the full disk: %q", ok)
	}
	subject := ""
	for _, l := range pc.multi("RETR 1") {
		if v, found := strings.CutPrefix(strings.TrimSuffix(l, "\r\n"), "Subject: "); found {
			subject = v
			break
		}
	}
	if subject == "" {
		t.Fatal("POP3 RETR 1: no Subject")
	}
	if l := pc.cmd("DELE 1"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("POP3 DELE on the full disk: %q", l)
	}
	if l := pc.cmd("QUIT"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("POP3 QUIT (deleting) on the full disk: %q", l)
	}
	return append(gone, subject)
}
