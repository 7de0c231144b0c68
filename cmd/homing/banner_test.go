package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// TestBannerSaysHowToReadTheDemoAccount: the start banner of a node with
// the demo account (make run) names the IMAP and POP3 ports and gives
// commands that read the demo account with a real client; curl runs the
// IMAP and POP3 lines as printed and gets the message sent to it.
func TestBannerSaysHowToReadTheDemoAccount(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (Debian's curl; .ci/run installs it)")
	}
	c := node.Config{Name: "n1", DemoAccount: true,
		Listen: node.Listen{SMTP: "127.0.0.1:0", IMAP: "127.0.0.1:0", POP3: "127.0.0.1:0"}, Admin: node.Admin{Addr: "127.0.0.1:0"},
		Store: node.Store{DataDir: t.TempDir(), Partitions: 2}}
	n, err := node.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	demo, _ := n.Demo()
	msg := testkit.Message("you@example.net", demo, "read me with curl", "the banner's lines work")
	if _, err := testkit.Send(n.SMTPAddr(), "you@example.net", []string{demo}, msg); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	banner(&out, n)
	text := out.String()
	for _, want := range []string{"IMAP " + n.IMAPAddr(), "POP3 " + n.POP3Addr(), "neomutt -f 'imap://", "mbsync"} {
		if !strings.Contains(text, want) {
			t.Errorf("banner lacks %q:\n%s", want, text)
		}
	}
	run := func(scheme string) string {
		t.Helper()
		for _, l := range strings.Split(text, "\n") {
			l = strings.TrimSpace(l)
			if strings.HasPrefix(l, "curl ") && strings.Contains(l, "'"+scheme+"://") {
				cmd, _, _ := strings.Cut(l, "#")
				var got []byte
				wait.For(t, 10*time.Second, func() bool {
					got, err = exec.Command("sh", "-c", cmd).CombinedOutput()
					return err == nil && len(got) > 0
				}, "curl %s as the banner prints it", scheme)
				return string(got)
			}
		}
		t.Fatalf("banner has no curl line for %s:\n%s", scheme, text)
		return ""
	}
	if got := run("imap"); !strings.Contains(got, "Subject: read me with curl") {
		t.Errorf("curl over IMAP printed %q, want the message", got)
	}
	if got := run("pop3"); !strings.HasPrefix(got, "1 ") {
		t.Errorf("curl over POP3 printed %q, want LIST's 1 SIZE", got)
	}
}
