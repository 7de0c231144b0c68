package node_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// popConn is a POP3 session read line by line, every read with its own
// deadline, so a test sees exactly what the server sends and when (an
// -ERR it sends on its own before it closes the connection).
type popConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dialPOP3Login connects to addr and logs in with USER/PASS; it returns
// the session and PASS's answer.
func dialPOP3Login(t *testing.T, addr, user, pass string) (*popConn, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &popConn{t: t, c: c, r: bufio.NewReader(c)}
	if g := p.line(10 * time.Second); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting %q", g)
	}
	if l := p.cmd("USER " + user); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("USER: %q", l)
	}
	return p, p.cmd("PASS " + pass)
}

// line reads one line within d, without its CRLF.
func (p *popConn) line(d time.Duration) string {
	p.t.Helper()
	l, err := p.rawLine(d)
	if err != nil {
		p.t.Fatalf("reading a line: %v", err)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (p *popConn) rawLine(d time.Duration) (string, error) {
	if err := p.c.SetReadDeadline(time.Now().Add(d)); err != nil {
		return "", err
	}
	return p.r.ReadString('\n')
}

func (p *popConn) cmd(line string) string {
	p.t.Helper()
	if _, err := fmt.Fprintf(p.c, "%s\r\n", line); err != nil {
		p.t.Fatal(err)
	}
	return p.line(20 * time.Second)
}

// multi sends a command with a multi-line answer and returns its lines,
// unstuffed, each with its CRLF: their lengths add up to the octets of
// the message that a RETR sends.
func (p *popConn) multi(line string) []string {
	p.t.Helper()
	if first := p.cmd(line); !strings.HasPrefix(first, "+OK") {
		p.t.Fatalf("%s: %q", line, first)
	}
	var out []string
	for {
		l, err := p.rawLine(20 * time.Second)
		if err != nil {
			p.t.Fatalf("%s: %v after %d lines", line, err, len(out))
		}
		if l == ".\r\n" {
			return out
		}
		out = append(out, strings.TrimPrefix(l, "."))
	}
}

// listing is LIST or UIDL as number -> value.
func (p *popConn) listing(cmd string) map[int]string {
	p.t.Helper()
	out := map[int]string{}
	for _, l := range p.multi(cmd) {
		n, v, _ := strings.Cut(strings.TrimSuffix(l, "\r\n"), " ")
		i, err := strconv.Atoi(n)
		if err != nil {
			p.t.Fatalf("%s line %q", cmd, l)
		}
		out[i] = v
	}
	return out
}

func uidlSet(m map[int]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// TestPOP3AcrossTheCluster: POP3 on every node works on the account at its
// owner. A session on the frontend holds the maildrop lock for every node:
// a second on either backend is refused [IN-USE]. LIST's sizes are the
// octets RETR sends (also of a message appended over IMAP with bare LFs,
// and of a large one appended on the backend that is not the owner, which
// comes back octet for octet).
// DELE and QUIT delete at the owner, and an IMAP session on another node
// sees the EXPUNGE. The owner is killed -9 during a session: it ends with
// -ERR, a reconnect works once the other backend owns the partition, and
// the UIDLs are the same and the deleted message stays deleted. The old
// owner comes back, and the frontend is killed -9 holding the lock: the lock holds until its lease
// runs out, then a session on the backend gets the maildrop.
func TestPOP3AcrossTheCluster(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	c.Add("fe", mail.RoleFrontend, "--pop3-lock-lease", "6s")
	c.Add("be1", mail.RoleBackend)
	c.Add("be2", mail.RoleBackend)
	c.WaitOwners(t, "be1", "be2")
	const acct, pass = "popper@example.test", "pop3-cluster-pw-1"
	fe := c.Admin("fe")
	if _, err := fe.CreateAccount(ctx, admin.CreateAccount{Address: acct, Password: pass}); err != nil {
		t.Fatal(err)
	}
	rec, err := fe.Account(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	owner := rec.Owner
	other := map[string]string{"be1": "be2", "be2": "be1"}[owner]
	for i := 1; i <= 3; i++ {
		msg := testkit.Message("s@remote.test", acct, fmt.Sprintf("delivered %d", i), ".dot-stuffed line\r\nbody "+strconv.Itoa(i))
		if _, err := testkit.Send(c.SMTPAddr("fe"), "s@remote.test", []string{acct}, msg); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 20*time.Second, func() bool {
		ms, err := fe.Messages(ctx, acct)
		return err == nil && len(ms) == 3
	}, "three deliveries stored")

	// An IMAP session on the backend that does not own the account
	// appends a message with bare LF line ends and then idles.
	expunged := make(chan uint32, 10)
	im, err := imapclient.DialInsecure(c.Process(other).IMAP, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Expunge: func(n uint32) { expunged <- n },
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if err := im.Login(acct, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	lf := "Subject: bare LF\n\n.starts with a dot\nsecond line\n"
	ap := im.Append("INBOX", int64(len(lf)), nil)
	_, _ = ap.Write([]byte(lf))
	_ = ap.Close()
	if _, err := ap.Wait(); err != nil {
		t.Fatal(err)
	}
	// And a large one (a body file on that node, which the owner pulls
	// in pieces).
	var big strings.Builder
	big.WriteString("Subject: large, by reference\r\n\r\n")
	for i := 0; big.Len() < 1500<<10; i++ {
		fmt.Fprintf(&big, "line %07d of a message appended on the backend that does not own the account\r\n", i)
	}
	ap = im.Append("INBOX", int64(big.Len()), nil)
	_, _ = ap.Write([]byte(big.String()))
	_ = ap.Close()
	if _, err := ap.Wait(); err != nil {
		t.Fatalf("APPEND of %d bytes on %s: %v", big.Len(), other, err)
	}
	if _, err := im.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	// A session on the frontend: the lock is taken at the owner.
	a, ok := dialPOP3Login(t, c.Process("fe").POP3, acct, pass)
	if !strings.HasPrefix(ok, "+OK") {
		t.Fatalf("PASS on the frontend: %q", ok)
	}
	for _, n := range []string{other, owner} {
		_, refused := dialPOP3Login(t, c.Process(n).POP3, acct, pass)
		if !strings.HasPrefix(refused, "-ERR [IN-USE]") {
			t.Fatalf("a second session on %s while the frontend's holds the maildrop: %q, want -ERR [IN-USE]", n, refused)
		}
	}
	if stat := a.cmd("STAT"); !strings.HasPrefix(stat, "+OK 5 ") {
		t.Fatalf("STAT %q, want 5 messages", stat)
	}
	sizes := a.listing("LIST")
	uidls := a.listing("UIDL")
	for i := 1; i <= 5; i++ {
		lines := a.multi("RETR " + strconv.Itoa(i))
		n := 0
		for _, l := range lines {
			n += len(l)
		}
		if strconv.Itoa(n) != sizes[i] {
			t.Errorf("message %d: LIST says %s octets, RETR sent %d", i, sizes[i], n)
		}
		if i == 5 && strings.Join(lines, "") != big.String() {
			t.Errorf("the large message appended on %s came back as %d other octets", other, n)
		}
	}
	if want := strconv.Itoa(len(lf) + strings.Count(lf, "\n")); sizes[4] != want {
		t.Errorf("the bare-LF message: LIST %s, want %s (CRLF line ends)", sizes[4], want)
	}

	// DELE and QUIT: deleted at the owner; the IMAP session hears it.
	idle, err := im.Idle()
	if err != nil {
		t.Fatal(err)
	}
	if l := a.cmd("DELE 1"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("DELE: %q", l)
	}
	if l := a.cmd("QUIT"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("QUIT with a deletion: %q", l)
	}
	select {
	case n := <-expunged:
		if n != 1 {
			t.Errorf("IMAP heard EXPUNGE %d, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the IMAP session on the other backend did not hear the POP3 deletion")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	deleted := uidls[1]

	// The lock was released: a session on the other backend gets it.
	b, ok := dialPOP3Login(t, c.Process(other).POP3, acct, pass)
	if !strings.HasPrefix(ok, "+OK") {
		t.Fatalf("PASS on %s after the first session quit: %q", other, ok)
	}
	before := b.listing("UIDL")
	if len(before) != 4 || slices.Contains(uidlSet(before), deleted) {
		t.Fatalf("after DELE 1 and QUIT: UIDL %v (deleted %s)", before, deleted)
	}
	for i, u := range before {
		if uidls[i+1] != u {
			t.Errorf("UIDL of message %d is %s, it was %s as message %d", i, u, uidls[i+1], i+1)
		}
	}

	// The owner dies during the session: -ERR, then the connection ends.
	c.Kill(owner)
	if l := b.line(15 * time.Second); !strings.HasPrefix(l, "-ERR") {
		t.Fatalf("the session when the owner died: %q, want -ERR", l)
	}
	if _, err := b.rawLine(10 * time.Second); err == nil {
		t.Fatal("the connection stayed open after the -ERR")
	}

	// A reconnect through the frontend works once the other backend owns
	// the partition; the UIDLs are stable and the deletion stayed.
	c.WaitOwners(t, other)
	var r *popConn
	wait.For(t, 30*time.Second, func() bool {
		var ok string
		r, ok = dialPOP3Login(t, c.Process("fe").POP3, acct, pass)
		if !strings.HasPrefix(ok, "+OK") {
			r.c.Close()
			return false
		}
		return true
	}, "no POP3 session through the frontend after the owner died")
	after := r.listing("UIDL")
	if fmt.Sprint(uidlSet(after)) != fmt.Sprint(uidlSet(before)) {
		t.Fatalf("UIDLs after the owner changed %v, before %v", uidlSet(after), uidlSet(before))
	}

	// The old owner comes back (two nodes of three dead would leave the
	// last one in a minority, and it would close every partition:
	// cluster/ownership.go). Its return may move the partition back, and
	// the session then ends; a new one through the frontend takes the lock
	// wherever the account is now.
	r.c.Close()
	c.Restart(owner)
	c.WaitOwners(t, owner, other)
	wait.For(t, 30*time.Second, func() bool {
		var ok string
		r, ok = dialPOP3Login(t, c.Process("fe").POP3, acct, pass)
		if !strings.HasPrefix(ok, "+OK") {
			r.c.Close()
			return false
		}
		return true
	}, "no POP3 session through the frontend after the old owner came back")
	if n := len(r.listing("UIDL")); n != len(before) {
		t.Fatalf("UIDL after the old owner came back lists %d messages, want %d", n, len(before))
	}

	// The frontend dies holding the lock: refused until the lease (6 s,
	// renewed every 2 s) runs out, then the maildrop is free.
	c.Kill("fe")
	killed := time.Now()
	if _, l := dialPOP3Login(t, c.Process(other).POP3, acct, pass); !strings.HasPrefix(l, "-ERR [IN-USE]") {
		t.Fatalf("right after the lock holder's node died: %q, want -ERR [IN-USE] (its lease holds)", l)
	}
	wait.For(t, 20*time.Second, func() bool {
		p, l := dialPOP3Login(t, c.Process(other).POP3, acct, pass)
		p.c.Close()
		return strings.HasPrefix(l, "+OK")
	}, "the lock of the dead frontend never ran out")
	t.Logf("the dead node's lock was free %v after the kill", time.Since(killed).Round(100*time.Millisecond))
}
