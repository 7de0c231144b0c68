package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// fetchmail runs Debian's fetchmail against a node's POP3 listener with
// a configuration the test writes: plain POP3 on loopback (sslproto ”),
// UIDL to remember what it fetched, keep (nothing deleted), and an MDA
// that writes each message to a file of its own.
type fetchmail struct {
	t                  *testing.T
	home, rc, out, ids string
}

func newFetchmail(t *testing.T, pop3Addr, user, password string) *fetchmail {
	t.Helper()
	if _, err := exec.LookPath("fetchmail"); err != nil {
		t.Fatalf("fetchmail is needed (Debian's fetchmail; .ci/run installs it): %v", err)
	}
	home := t.TempDir()
	f := &fetchmail{t: t, home: home, rc: filepath.Join(home, "fetchmailrc"), out: filepath.Join(home, "mail"), ids: filepath.Join(home, "ids")}
	if err := os.Mkdir(f.out, 0o700); err != nil {
		t.Fatal(err)
	}
	rc := fmt.Sprintf(`set no syslog
set invisible
poll 127.0.0.1 with proto POP3 port %d uidl
  user "%s" there with password "%s" is root here
  sslproto ''
  keep
  mda "/bin/sh -c 'cat > %s/msg.$$'"
`, port(t, pop3Addr), user, password, f.out)
	if err := os.WriteFile(f.rc, []byte(rc), 0o600); err != nil { // fetchmail wants 0600
		t.Fatal(err)
	}
	return f
}

// run runs fetchmail once; fetchmail exits 0 when it fetched mail and 1
// when there was none.
func (f *fetchmail) run(wantMail bool) string {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "fetchmail", "-f", f.rc, "-i", f.ids, "--pidfile", filepath.Join(f.home, "pid"), "-v", "--nodetach")
	cmd.Env = append(os.Environ(), "HOME="+f.home, "FETCHMAILUSER=root", "FETCHMAILHOME="+f.home)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil && wantMail, errors.As(err, &ee) && ee.ExitCode() == 1 && !wantMail:
	default:
		f.t.Fatalf("fetchmail (want mail: %v): %v\n%s", wantMail, err, out)
	}
	return string(out)
}

// subjects are the Subject lines of the messages fetchmail delivered.
func (f *fetchmail) subjects() []string {
	f.t.Helper()
	ents, err := os.ReadDir(f.out)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(f.out, e.Name()))
		if err != nil {
			f.t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if s, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "Subject: "); ok {
				out = append(out, s)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestFetchmailRetrievesByUIDL: fetchmail fetches the three messages
// delivered over SMTP to a real node's INBOX, over POP3; a second run
// fetches nothing (the UIDLs are the same), and after one more delivery a
// third run fetches only it.
func TestFetchmailRetrievesByUIDL(t *testing.T) {
	const user, pass = "fetch@example.test", "pop3-by-uidl-pw-1"
	n := startNode(t, "fetchmail")
	n.createAccount(t, user, pass)
	deliver := func(subject string) {
		t.Helper()
		msg := testkit.Message("sender@remote.test", user, subject, "the body of "+subject)
		if _, err := testkit.Send(n.p.SMTP, "sender@remote.test", []string{user}, msg); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"first", "second", "third"} {
		deliver(s)
	}
	wait.For(t, 20*time.Second, func() bool {
		ms, err := n.admin.Messages(context.Background(), user)
		return err == nil && len(ms) == 3
	}, "the three messages were not stored")
	if n.p.POP3 == "" {
		t.Fatal("the node reports no POP3 listener")
	}
	f := newFetchmail(t, n.p.POP3, user, pass)
	f.run(true)
	if got := f.subjects(); !slices.Equal(got, []string{"first", "second", "third"}) {
		t.Fatalf("the first run fetched %q", got)
	}
	f.run(false)
	if got := f.subjects(); len(got) != 3 {
		t.Fatalf("the second run fetched again: %q", got)
	}
	deliver("fourth")
	wait.For(t, 20*time.Second, func() bool {
		ms, err := n.admin.Messages(context.Background(), user)
		return err == nil && len(ms) == 4
	}, "the fourth message was not stored")
	f.run(true)
	if got := f.subjects(); !slices.Equal(got, []string{"first", "fourth", "second", "third"}) {
		t.Fatalf("after the third run: %q", got)
	}
}
