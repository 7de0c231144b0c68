package node_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
)

// pop3Client is a POP3 client over textproto for the node's tests.
type pop3Client struct {
	t *testing.T
	c *textproto.Conn
}

func dialPOP3(t *testing.T, conn net.Conn) *pop3Client {
	t.Helper()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	p := &pop3Client{t: t, c: textproto.NewConn(conn)}
	t.Cleanup(func() { p.c.Close() })
	if g := p.line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting %q", g)
	}
	return p
}

func (p *pop3Client) line() string {
	p.t.Helper()
	l, err := p.c.ReadLine()
	if err != nil {
		p.t.Fatal(err)
	}
	return l
}

func (p *pop3Client) cmd(format string, args ...any) string {
	p.t.Helper()
	if err := p.c.PrintfLine(format, args...); err != nil {
		p.t.Fatal(err)
	}
	return p.line()
}

// dot reads a multi-line body, unstuffed, with LF line ends.
func (p *pop3Client) dot() []byte {
	p.t.Helper()
	b, err := p.c.ReadDotBytes()
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func TestPOP3ServesTheNodesMailboxes(t *testing.T) {
	n := testkit.StartNode(t, "n1", testkit.WithConfig(func(c *node.Config) {
		c.Listen.POP3, c.Listen.POP3S = "127.0.0.1:0", "127.0.0.1:0"
	}))
	c := client(n)
	createAccount(t, c, "alice@example.test", "secret-pw", 0)
	msg := testkit.Message("bob@remote.test", "alice@example.test", "dots", ".a line with a dot\n..two\nlast")
	if _, err := testkit.Send(n.SMTPAddr(), "bob@remote.test", []string{"alice@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	ms := waitMessages(t, c, "alice@example.test", 1)
	raw, err := c.RawMessage(context.Background(), "alice@example.test", ms[0].ID)
	if err != nil {
		t.Fatal(err)
	}

	conn, err := net.Dial("tcp", n.POP3Addr())
	if err != nil {
		t.Fatal(err)
	}
	p := dialPOP3(t, conn)
	p.cmd("USER alice@example.test")
	if r := p.cmd("PASS secret-pw"); r != fmt.Sprintf("+OK maildrop has 1 messages (%d octets)", len(raw)) {
		t.Fatalf("PASS: %q", r)
	}
	if r := p.cmd("UIDL 1"); r != "+OK 1 "+ms[0].ID {
		t.Errorf("UIDL 1: %q, want the message's id %s", r, ms[0].ID)
	}
	if r := p.cmd("RETR 1"); r != fmt.Sprintf("+OK %d octets", len(raw)) {
		t.Fatalf("RETR: %q", r)
	}
	if got, want := p.dot(), bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")); !bytes.Equal(got, want) {
		t.Errorf("RETR sent\n%q\nthe stored message is\n%q", got, want)
	}

	// The maildrop is locked for a second session (over pop3s).
	tc, err := tls.Dial("tcp", n.POP3SAddr(), &tls.Config{InsecureSkipVerify: true}) // the node's self-signed certificate
	if err != nil {
		t.Fatal(err)
	}
	second := dialPOP3(t, tc)
	second.cmd("USER alice@example.test")
	if r := second.cmd("PASS secret-pw"); !strings.HasPrefix(r, "-ERR [IN-USE]") {
		t.Errorf("a second session: %q", r)
	}
	if r := second.cmd("PASS wrong"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("PASS without USER: %q", r)
	}

	// DELE and QUIT: deleted at the owner, answered once durable.
	if r := p.cmd("DELE 1"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("DELE: %q", r)
	}
	r := p.cmd("QUIT")
	left, err := c.Messages(context.Background(), "alice@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r, "+OK") || len(left) != 0 {
		t.Errorf("QUIT: %q, %d messages left, want +OK and none", r, len(left))
	}
	// The session ends (its lock released before its connection is
	// closed), and a new one logs in.
	if l, err := p.c.ReadLine(); err == nil {
		t.Fatalf("after QUIT: %q", l)
	}
	conn, err = net.Dial("tcp", n.POP3Addr())
	if err != nil {
		t.Fatal(err)
	}
	third := dialPOP3(t, conn)
	third.cmd("USER alice@example.test")
	if r := third.cmd("PASS secret-pw"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("after QUIT: %q", r)
	}
}

// TestDisabledAccountRefusedByIMAPAndPOP3: disabling an account (PATCH
// disabled) refuses its IMAP and POP3 logins with the right password, as
// it does SMTP AUTH and the API; enabled again, both log in.
func TestDisabledAccountRefusedByIMAPAndPOP3(t *testing.T) {
	n := testkit.StartNode(t, "n1", testkit.WithConfig(func(c *node.Config) {
		c.Listen.POP3, c.Listen.IMAP = "127.0.0.1:0", "127.0.0.1:0"
	}))
	c := client(n)
	const acct, pass = "dora@example.test", "mailbox-pw-123"
	createAccount(t, c, acct, pass, 0)
	imapLogin := func() error {
		ic, err := imapclient.DialInsecure(n.IMAPAddr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ic.Close()
		return ic.Login(acct, pass).Wait()
	}
	pop3Pass := func() string {
		conn, err := net.Dial("tcp", n.POP3Addr())
		if err != nil {
			t.Fatal(err)
		}
		p := dialPOP3(t, conn)
		defer p.cmd("QUIT")
		p.cmd("USER " + acct)
		return p.cmd("PASS " + pass)
	}
	setDisabled := func(d bool) {
		if a, err := c.UpdateAccount(context.Background(), acct, admin.AccountUpdate{Disabled: &d}); err != nil || a.Disabled != d {
			t.Fatalf("disabled=%v: %+v %v", d, a, err)
		}
	}

	if err := imapLogin(); err != nil {
		t.Fatalf("IMAP login of an active account: %v", err)
	}
	if r := pop3Pass(); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3 PASS of an active account: %q", r)
	}
	setDisabled(true)
	if err := imapLogin(); err == nil || !strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
		t.Errorf("IMAP login of a disabled account: %v, want NO [AUTHENTICATIONFAILED]", err)
	}
	if r := pop3Pass(); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("POP3 PASS of a disabled account: %q, want -ERR", r)
	}
	setDisabled(false)
	if err := imapLogin(); err != nil {
		t.Errorf("IMAP login once enabled again: %v", err)
	}
	if r := pop3Pass(); !strings.HasPrefix(r, "+OK") {
		t.Errorf("POP3 PASS once enabled again: %q", r)
	}
}
