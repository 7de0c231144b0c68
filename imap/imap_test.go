package imap_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

const pw = "imap-test-password"

// startNode starts a single node with IMAP on loopback and an account.
func startNode(t *testing.T, accounts ...string) *node.Node {
	t.Helper()
	n := testkit.StartNode(t, "imap1", testkit.WithConfig(func(c *node.Config) { c.Listen.IMAP = "127.0.0.1:0" }))
	c := admin.NewClient("http://"+n.AdminAddr(), "")
	for _, a := range accounts {
		if _, err := c.CreateAccount(t.Context(), admin.CreateAccount{Address: a, Password: pw}); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

type updates struct {
	exists  chan uint32
	expunge chan uint32
	fetch   chan *imapclient.FetchMessageData
}

func dial(t *testing.T, addr string) (*imapclient.Client, *updates) {
	t.Helper()
	u := &updates{exists: make(chan uint32, 100), expunge: make(chan uint32, 100), fetch: make(chan *imapclient.FetchMessageData, 100)}
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Expunge: func(n uint32) { u.expunge <- n },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				u.exists <- *d.NumMessages
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) { u.fetch <- m },
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, u
}

func login(t *testing.T, addr, user string) (*imapclient.Client, *updates) {
	t.Helper()
	c, u := dial(t, addr)
	if err := c.Login(user, pw).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c, u
}

func deliver(t *testing.T, n *node.Node, to, subject string) {
	t.Helper()
	msg := testkit.Message("sender@remote.test", to, subject, "hello "+subject)
	if _, err := testkit.Send(n.SMTPAddr(), "sender@remote.test", []string{to}, msg); err != nil {
		t.Fatal(err)
	}
}

func appendMsg(t *testing.T, c *imapclient.Client, folder, raw string, flags ...imap.Flag) *imap.AppendData {
	t.Helper()
	cmd := c.Append(folder, int64(len(raw)), &imap.AppendOptions{Flags: flags, Time: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)})
	if _, err := cmd.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND to %s: %v", folder, err)
	}
	return d
}

func imapCode(err error) imap.ResponseCode {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

func TestCapabilitiesAndLoginOverLoopback(t *testing.T) {
	n := startNode(t, "cap@example.test")
	c, _ := dial(t, n.IMAPAddr())
	caps := c.Caps()
	for _, want := range []imap.Cap{imap.CapIMAP4rev2, imap.CapIMAP4rev1, imap.CapStartTLS, "AUTH=PLAIN", "ID"} {
		if !caps.Has(want) {
			t.Errorf("greeting capabilities %v lack %s", caps, want)
		}
	}
	if caps.Has(imap.CapLoginDisabled) {
		t.Error("LOGINDISABLED on loopback")
	}
	if err := c.Login("cap@example.test", "wrong").Wait(); imapCode(err) != imap.ResponseCodeAuthenticationFailed {
		t.Fatalf("wrong password: %v", err)
	}
	if err := c.Login("cap@example.test", pw).Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{imap.CapIdle, imap.CapMove, imap.CapUIDPlus, imap.CapSpecialUse, "QUOTA", imap.CapNamespace} {
		if !got.Has(want) {
			t.Errorf("capabilities after login %v lack %s", got, want)
		}
	}
	id, err := c.ID(&imap.IDData{Name: "test"}).Wait()
	if err != nil || id.Name != "Homing" {
		t.Fatalf("ID: %+v, %v", id, err)
	}
}

func TestStartTLSThenLogin(t *testing.T) {
	n := startNode(t, "tls@example.test")
	c, err := imapclient.DialStartTLS(n.IMAPAddr(), &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Caps().Has(imap.CapStartTLS) {
		t.Error("STARTTLS still offered after STARTTLS")
	}
	if err := c.Login("tls@example.test", pw).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestMailboxCommands(t *testing.T) {
	n := startNode(t, "box@example.test")
	deliver(t, n, "box@example.test", "delivered one")
	c, _ := login(t, n.IMAPAddr(), "box@example.test")

	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true, ReturnStatus: &imap.StatusOptions{NumMessages: true}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	uses := map[string]string{}
	for _, l := range list {
		for _, a := range l.Attrs {
			if strings.HasPrefix(string(a), `\`) && a != imap.MailboxAttrHasNoChildren && a != imap.MailboxAttrHasChildren {
				uses[l.Mailbox] = string(a)
			}
		}
	}
	if uses["Sent"] != `\Sent` || uses["Trash"] != `\Trash` || uses["Junk"] != `\Junk` || uses["Drafts"] != `\Drafts` || uses["Archive"] != `\Archive` {
		t.Fatalf("special-use folders: %v", uses)
	}
	wait.For(t, 10*time.Second, func() bool {
		st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
		return err == nil && *st.NumMessages == 1
	}, "the delivered message in INBOX")

	a1 := appendMsg(t, c, "INBOX", "From: a@example.test\r\nTo: box@example.test\r\nSubject: appended\r\n\r\nbody text here\r\n", imap.FlagFlagged)
	if a1.UID != 2 || a1.UIDValidity == 0 {
		t.Fatalf("APPENDUID %+v", a1)
	}
	ac := c.Append("Nowhere", 3, nil)
	_, _ = ac.Write([]byte("x\r\n"))
	_ = ac.Close()
	if _, err := ac.Wait(); imapCode(err) != imap.ResponseCodeTryCreate {
		t.Fatalf("append to a missing folder: %v, want TRYCREATE", err)
	}

	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 2 || sel.UIDValidity != a1.UIDValidity || sel.UIDNext != 3 {
		t.Fatalf("SELECT: %+v, %v", sel, err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{UID: true, Flags: true, Envelope: true, RFC822Size: true,
		InternalDate: true, BodyStructure: &imap.FetchItemBodyStructure{}, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("FETCH: %d, %v", len(msgs), err)
	}
	if msgs[0].Envelope.Subject != "delivered one" || msgs[1].Envelope.Subject != "appended" {
		t.Fatalf("envelopes: %q, %q", msgs[0].Envelope.Subject, msgs[1].Envelope.Subject)
	}
	if !msgs[1].InternalDate.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) || len(msgs[1].Flags) != 1 || msgs[1].Flags[0] != imap.FlagFlagged {
		t.Fatalf("appended: date %v flags %v", msgs[1].InternalDate, msgs[1].Flags)
	}
	body := msgs[1].FindBodySection(&imap.FetchItemBodySection{})
	if int64(len(body)) != msgs[1].RFC822Size || !strings.Contains(string(body), "body text here") {
		t.Fatalf("BODY[]: %q (size %d)", body, msgs[1].RFC822Size)
	}
	// A partial and a header field.
	part, err := c.Fetch(imap.UIDSetNum(2), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{
		{Peek: true, Partial: &imap.SectionPartial{Offset: 6, Size: 13}},
		{Peek: true, Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}},
	}}).Collect()
	if err != nil || len(part) != 1 {
		t.Fatal(err)
	}
	if got := string(part[0].FindBodySection(&imap.FetchItemBodySection{Partial: &imap.SectionPartial{Offset: 6, Size: 13}})); got != "a@example.tes" {
		t.Fatalf("BODY[]<6.13> = %q", got)
	}
	if got := string(part[0].FindBodySection(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}})); !strings.HasPrefix(got, "Subject: appended") {
		t.Fatalf("BODY[HEADER.FIELDS (Subject)] = %q", got)
	}

	// SEARCH
	res, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, nil).Wait()
	if err != nil || fmt.Sprint(res.AllUIDs()) != "[2]" {
		t.Fatalf("UID SEARCH FLAGGED: %v, %v", res.AllUIDs(), err)
	}
	res, err = c.Search(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "DELIVERED"}}}, nil).Wait()
	if err != nil || fmt.Sprint(res.AllSeqNums()) != "[1]" {
		t.Fatalf("SEARCH SUBJECT: %v, %v", res.AllSeqNums(), err)
	}
	res, err = c.Search(&imap.SearchCriteria{Body: []string{"body text"}, NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil || fmt.Sprint(res.AllSeqNums()) != "[2]" {
		t.Fatalf("SEARCH BODY UNSEEN: %v, %v", res.AllSeqNums(), err)
	}

	// STORE, COPY, MOVE, EXPUNGE
	st, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen, "$Work"}}, nil).Collect()
	if err != nil || len(st) != 1 || len(st[0].Flags) != 2 {
		t.Fatalf("STORE: %+v, %v", st, err)
	}
	cp, err := c.Copy(imap.SeqSetNum(1), "Archive").Wait()
	if err != nil || fmt.Sprint(cp.DestUIDs) != "1" {
		t.Fatalf("COPY: %+v, %v", cp, err)
	}
	mv, err := c.Move(imap.SeqSetNum(2), "Trash").Wait()
	if err != nil || fmt.Sprint(mv.SourceUIDs) != "2" {
		t.Fatalf("MOVE: %+v, %v", mv, err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	exp, err := c.Expunge().Collect()
	if err != nil || fmt.Sprint(exp) != "[1]" {
		t.Fatalf("EXPUNGE: %v, %v", exp, err)
	}
	for name, want := range map[string]uint32{"INBOX": 0, "Archive": 1, "Trash": 1} {
		s, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil || *s.NumMessages != want {
			t.Errorf("%s: %v messages, want %d (%v)", name, s, want, err)
		}
	}
	// Folders
	if err := c.Create("Projects/2024", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("Nowhere", "Work", nil).Wait(); err == nil {
		t.Fatal("renaming a folder that does not exist succeeded")
	}
	if err := c.Rename("Projects/2024", "Work/2024", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("Work/2024").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("Work/2024", nil).Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Fatalf("SELECT of a deleted folder: %v", err)
	}
	q, err := c.GetQuotaRoot("INBOX").Wait()
	if err != nil || len(q) != 1 {
		t.Fatalf("GETQUOTAROOT: %+v, %v", q, err)
	}
}

func TestIdleSeesDeliveryAndOtherSessionsChanges(t *testing.T) {
	n := startNode(t, "idle@example.test")
	appendTo := func(c *imapclient.Client) { appendMsg(t, c, "INBOX", "Subject: x\r\n\r\nx\r\n") }
	a, au := login(t, n.IMAPAddr(), "idle@example.test")
	b, _ := login(t, n.IMAPAddr(), "idle@example.test")
	appendTo(b)
	if _, err := a.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := a.Idle()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deliver(t, n, "idle@example.test", "while idle")
	select {
	case got := <-au.exists:
		if got != 2 {
			t.Fatalf("EXISTS %d, want 2", got)
		}
		t.Logf("EXISTS %v after the send", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("no EXISTS within 5 s of a delivery")
	}
	if err := b.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-au.fetch:
		if m.SeqNum != 1 {
			t.Fatalf("FETCH for %d", m.SeqNum)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no FETCH FLAGS in IDLE after another session's STORE")
	}
	if err := b.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	select {
	case seq := <-au.expunge:
		if seq != 1 {
			t.Fatalf("EXPUNGE %d", seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EXPUNGE in IDLE after another session's EXPUNGE")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}
