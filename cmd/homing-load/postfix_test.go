package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVmailboxMap(t *testing.T) {
	text, dirs, err := vmailboxMap([]string{"user0000@example.test", "user0001@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if text != "user0000@example.test example.test/user0000/\nuser0001@example.test example.test/user0001/\n" {
		t.Errorf("map %q", text)
	}
	if len(dirs) != 2 || dirs[1] != "example.test/user0001/" {
		t.Errorf("dirs %q", dirs)
	}
	for _, bad := range []string{"nouser", "@example.test", "a/b@example.test", "a b@example.test"} {
		if _, _, err := vmailboxMap([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// main.cf keeps the instance to itself (its directories, loopback, no
// local delivery) and sets no durability option.
func TestPostfixMainCF(t *testing.T) {
	cf := postfixMainCF("/tmp/pf", "example.test", 65534, 65533, 20)
	for _, want := range []string{
		"queue_directory = /tmp/pf/queue\n", "data_directory = /tmp/pf/data\n", "inet_interfaces = loopback-only\n",
		"mydestination =\n", "virtual_mailbox_domains = example.test\n", "virtual_mailbox_base = /tmp/pf/mail\n",
		"virtual_mailbox_maps = texthash:/tmp/pf/etc/vmailbox\n", "virtual_uid_maps = static:65534\n", "virtual_gid_maps = static:65533\n",
		"maillog_file = /tmp/pf/maillog\n", "default_process_limit = 100\n", "smtpd_client_connection_count_limit = 50\n",
	} {
		if !strings.Contains(cf, want) {
			t.Errorf("main.cf lacks %q:\n%s", want, cf)
		}
	}
	for _, never := range []string{"fsync", "sync", "hash:"} {
		if strings.Contains(strings.ReplaceAll(cf, "texthash:", ""), never) {
			t.Errorf("main.cf has %q", never)
		}
	}
	if cf := postfixMainCF("/x", "d.test", 1, 1, 200); !strings.Contains(cf, "default_process_limit = 410\n") || !strings.Contains(cf, "smtpd_client_connection_count_limit = 210\n") {
		t.Errorf("limits for 200 sessions:\n%s", cf)
	}
	m := postfixMasterCF("127.0.0.1:2626")
	if !strings.HasPrefix(m, "127.0.0.1:2626 inet n - n - - smtpd\n") || strings.Contains(m, "\nsmtp      inet") {
		t.Errorf("master.cf:\n%s", m)
	}
}

func TestSearchableByAll(t *testing.T) {
	d := t.TempDir() // 0700
	if err := searchableByAll(d); err == nil {
		t.Errorf("%s (0700) searchable", d)
	}
	if err := searchableByAll("/"); err != nil {
		t.Error(err)
	}
}

// The real Postfix: a private instance takes 20 messages over SMTP and
// delivers each into its account's Maildir; the count is read from the
// Maildirs; stop leaves neither a process nor the directory.
func TestPrivatePostfixDelivers(t *testing.T) {
	ctx := context.Background()
	cfg, err := parseArgs([]string{"--targets", "postfix", "--n", "20", "--c", "3", "--accounts", "4", "--size", "2000"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	gen, rcpts, err := accountList(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := startPostfix(ctx, postfixOptions{Domain: cfg.Domain, Accounts: rcpts, Sessions: cfg.sessions()})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			pf.Stop(30 * time.Second)
		}
	}()
	if pid := pf.masterPID(); pid <= 0 || !alive(pid) {
		t.Fatalf("no master running (pid %d); log:\n%s", pid, pf.logTail(20))
	}
	if n, err := pf.Delivered(); n != 0 || err != nil {
		t.Fatalf("delivered before sending: %d, %v", n, err)
	}
	var r roundResult
	res := sendTo(ctx, cfg, pf.SMTP, gen, rcpts, &r)
	if res.Accepted != 20 {
		t.Fatalf("accepted %d of 20: %q; log:\n%s", res.Accepted, res.Samples, pf.logTail(20))
	}
	w := pf.waitDelivered(ctx, 20, time.Minute)
	if w.Err != nil || w.Delivered != 20 || w.Reached.IsZero() {
		t.Fatalf("wait %+v; log:\n%s", w, pf.logTail(20))
	}
	// Every account got its 5 messages, each the generator's message
	// with Postfix's Received header on top.
	for i, a := range rcpts {
		local, _, _ := strings.Cut(a, "@")
		news := filepath.Join(pf.Dir, "mail", cfg.Domain, local, "new")
		es, err := os.ReadDir(news)
		if err != nil || len(es) != 5 {
			t.Fatalf("account %d: %d messages in %s (%v)", i, len(es), news, err)
		}
		b, err := os.ReadFile(filepath.Join(news, es[0].Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("Received: from homing-load.localhost")) || !bytes.Contains(b, []byte("To: <"+a+">")) ||
			!bytes.Contains(b, []byte("X-Mailer: homing-load")) || len(b) < 2000 {
			t.Errorf("account %d: message of %d bytes:\n%.600s", i, len(b), b)
		}
		st, err := os.Stat(filepath.Join(news, es[0].Name()))
		if err == nil && st.Sys() != nil {
			if uid := fileUID(st); uid != 65534 {
				t.Errorf("delivered as uid %d, want nobody", uid)
			}
		}
	}
	pid, dir := pf.masterPID(), pf.Dir
	stopped = true
	if err := pf.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("master %d still running after Stop", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after Stop (%v)", dir, err)
	}
}

// An unknown recipient is refused at RCPT by the instance's smtpd, as a
// real server does: the map is the list of accounts.
func TestPrivatePostfixRefusesUnknownRecipient(t *testing.T) {
	if _, err := exec.LookPath("swaks"); err != nil {
		t.Fatal("swaks is needed (Debian: apt-get install swaks; .ci/run installs it)")
	}
	pf, err := startPostfix(context.Background(), postfixOptions{Domain: "example.test", Accounts: []string{"user0000@example.test"}, Sessions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Stop(30 * time.Second)
	out, err := exec.Command("swaks", "--server", pf.SMTP, "--to", "nobody@example.test", "--from", "bench@example.test").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "550 5.1.1 <nobody@example.test>") {
		t.Fatalf("swaks to an unknown account: %v\n%s", err, out)
	}
}
