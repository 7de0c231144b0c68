package pop3

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// getmail runs Debian's getmail6 (installed by .ci/run) against a server.
// It delivers what it retrieves over LMTP to a sink of the test's
// (MDA_lmtp): getmail's Maildir and mbox deliveries fork a child and
// install the SIGCHLD handler only after the fork, so a child that ends
// first is never seen and the delivery times out (and they refuse to run
// as root, which CI is).
type getmail struct {
	t      *testing.T
	dir    string // getmail's state: the UIDLs it has seen (oldmail-*)
	sink   *lmtpSink
	rcfile string
}

// newGetmail writes a getmailrc that retrieves alice's INBOX from ts; over
// implicit TLS (SimplePOP3SSLRetriever, the certificate checked against
// cert) when cert is set. options are lines of its [options] section.
func newGetmail(t *testing.T, ts *testServer, cert *testCert, options string) *getmail {
	t.Helper()
	if _, err := exec.LookPath("getmail"); err != nil {
		t.Fatalf("getmail is needed (Debian's getmail6; .ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	g := &getmail{t: t, dir: filepath.Join(dir, "state"), sink: startLMTPSink(t)}
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	retriever := fmt.Sprintf("type = SimplePOP3Retriever\nport = %d\n", port(t, ts.addr))
	if cert != nil {
		retriever = fmt.Sprintf("type = SimplePOP3SSLRetriever\nport = %d\nca_certs = %s\n", port(t, ts.tlsAddr), cert.pemFile)
	}
	rc := "[retriever]\n" + retriever +
		"server = 127.0.0.1\nusername = " + alice + "\npassword = " + alicePW + "\ntimeout = 20\n\n" +
		fmt.Sprintf("[destination]\ntype = MDA_lmtp\nhost = 127.0.0.1\nport = %d\noverride = %s\n\n", port(t, g.sink.addr), alice) +
		"[options]\nverbose = 1\ndelivered_to = false\nreceived = false\n" + options
	g.rcfile = filepath.Join(dir, "getmailrc")
	if err := os.WriteFile(g.rcfile, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

// run runs getmail once and fails unless it exits 0.
func (g *getmail) run() string {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "getmail", "--rcfile="+g.rcfile, "--getmaildir="+g.dir)
	cmd.Env = append(os.Environ(), "HOME="+g.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("getmail: %v\n%s", err, out)
	}
	return string(out)
}

// messages returns the messages getmail delivered, in the order of their
// Subject.
func (g *getmail) messages() []string {
	out := g.sink.all()
	sort.Slice(out, func(i, j int) bool { return subject(out[i]) < subject(out[j]) })
	return out
}

func subject(msg string) string {
	for l := range strings.SplitSeq(msg, "\r\n") {
		if s, ok := strings.CutPrefix(l, "Subject: "); ok {
			return s
		}
	}
	return ""
}

// getmailMessages carry a Return-Path (RFC 5321 §4.4, added at final
// delivery): getmail gives it to its LMTP destination as the sender
// ("unknown" otherwise, which is no address).
var getmailMessages = []struct{ ID, Raw string }{
	{"1", "Return-Path: <bob@example.net>\r\nFrom: bob@example.net\r\nSubject: a first\r\n\r\nHello.\r\n"},
	{"2", "Return-Path: <carol@example.net>\r\nFrom: carol@example.net\r\nSubject: b dots\r\n\r\n.\r\n..\r\n.hidden\r\nlast line\r\n"},
	{"3", "Return-Path: <dave@example.net>\r\nFrom: dave@example.net\r\nSubject: c long\r\n\r\n" + strings.Repeat("a line of a longer message\r\n", 4000)},
}

func TestGetmailRetrievesNewMessagesByUidlThenDeletes(t *testing.T) {
	ts := startServer(t, Config{})
	for _, m := range getmailMessages {
		ts.be.add(alice, m.ID, m.Raw)
	}
	keep := newGetmail(t, ts, nil, "read_all = false\ndelete = false\n")

	// The first run retrieves every message, byte for byte (but for the
	// line ends), and deletes none.
	keep.run()
	got := keep.messages()
	if len(got) != len(getmailMessages) {
		t.Fatalf("getmail retrieved %d messages, want %d", len(got), len(getmailMessages))
	}
	for i, m := range getmailMessages {
		if got[i] != m.Raw {
			t.Errorf("message %s as getmail stored it:\n%.300q\nwant\n%.300q", m.ID, got[i], m.Raw)
		}
	}
	waitUnlocked(t, ts.be, alice)
	if calls := ts.be.deleteCalls(); len(calls) != 0 {
		t.Fatalf("getmail without delete deleted %v", calls)
	}

	// The UIDLs are the same in the next session: getmail, which keeps
	// the ones it has seen, retrieves nothing more; then only a new one.
	keep.run()
	if n := len(keep.messages()); n != len(getmailMessages) {
		t.Errorf("a second run left %d messages, want still %d (UIDLs not stable?)", n, len(getmailMessages))
	}
	waitUnlocked(t, ts.be, alice)
	ts.be.add(alice, "4", "Return-Path: <erin@example.net>\r\nFrom: erin@example.net\r\nSubject: d new\r\n\r\nNew.\r\n")
	keep.run()
	if got := keep.messages(); len(got) != 4 || subject(got[3]) != "d new" {
		t.Errorf("after a new message getmail has %d messages", len(got))
	}
	waitUnlocked(t, ts.be, alice)

	// Retrieving and deleting: every message again (read_all), then
	// deleted in one Delete at QUIT.
	del := newGetmail(t, ts, nil, "read_all = true\ndelete = true\n")
	del.run()
	if got := del.messages(); len(got) != 4 {
		t.Errorf("getmail with delete retrieved %d messages, want 4", len(got))
	}
	waitUnlocked(t, ts.be, alice)
	if ids := ts.be.ids(alice); len(ids) != 0 {
		t.Errorf("after getmail with delete the maildrop has %v", ids)
	}
	calls := ts.be.deleteCalls()
	if len(calls) != 1 {
		t.Fatalf("Delete calls %v, want one at QUIT", calls)
	}
	ids := slices.Clone(calls[0])
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"1", "2", "3", "4"}) {
		t.Errorf("deleted %v", ids)
	}
}

func TestGetmailOverPop3sRetrievesAndDeletes(t *testing.T) {
	cert := newTestCert(t)
	ts := startServer(t, Config{TLSConfig: cert.server})
	for _, m := range getmailMessages {
		ts.be.add(alice, m.ID, m.Raw)
	}
	g := newGetmail(t, ts, cert, "read_all = true\ndelete = true\n")
	g.run()
	got := g.messages()
	if len(got) != len(getmailMessages) {
		t.Fatalf("getmail over pop3s retrieved %d messages, want %d", len(got), len(getmailMessages))
	}
	for i, m := range getmailMessages {
		if got[i] != m.Raw {
			t.Errorf("message %s differs", m.ID)
		}
	}
	waitUnlocked(t, ts.be, alice)
	if ids := ts.be.ids(alice); len(ids) != 0 {
		t.Errorf("after getmail with delete the maildrop has %v", ids)
	}
}

// lmtpSink is an LMTP server (RFC 2033, go-smtp's) on loopback that keeps
// the messages delivered to it.
type lmtpSink struct {
	addr string
	mu   sync.Mutex
	msgs []string
}

func startLMTPSink(t *testing.T) *lmtpSink {
	t.Helper()
	sink := &lmtpSink{}
	srv := gosmtp.NewServer(sink)
	srv.LMTP = true
	srv.Domain = "sink.test"
	srv.ReadTimeout, srv.WriteTimeout = ioWindow, ioWindow
	l := listenLoopback(t)
	sink.addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return sink
}

func (s *lmtpSink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// NewSession implements go-smtp's Backend.
func (s *lmtpSink) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &lmtpSession{sink: s}, nil
}

type lmtpSession struct{ sink *lmtpSink }

func (*lmtpSession) Reset()                                 {}
func (*lmtpSession) Logout() error                          { return nil }
func (*lmtpSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (*lmtpSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (l *lmtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	l.sink.mu.Lock()
	defer l.sink.mu.Unlock()
	l.sink.msgs = append(l.sink.msgs, string(b))
	return nil
}
