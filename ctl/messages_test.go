package ctl

import (
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
)

func TestMessages(t *testing.T) {
	e := newTestEnv(t, "")
	out := e.run("", "messages", "demo@example.test").ok(t).stdout
	row(t, out, "ID", "FOLDER", "FLAGS", "SIZE", "RECEIVED", "FROM", "SUBJECT")
	// The terminal escape in the subject is neutralised.
	row(t, out, "M1", "INBOX", "-", "4.0", "KiB", t0.Local().Format(time.RFC3339), "a@b.test", "hi", "?[31mred")
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape character reached the terminal")
	}

	raw := e.run("", "message", "demo@example.test", "M1").ok(t).stdout
	if raw != "Subject: hi\r\n\r\nbody\x00\xff\r\n" {
		t.Errorf("raw message %q", raw)
	}
	e.run("", "message", "demo@example.test", "NOPE").failed(t, 1, "homing ctl: no message NOPE in demo@example.test (homing ctl messages demo@example.test lists them)")
	e.run("", "messages", "ghost@example.test").failed(t, 1, "homing ctl: no account ghost@example.test (homing ctl accounts lists the accounts)")
	e.run("", "message", "demo@example.test").failed(t, 2, "homing ctl: message needs ADDRESS and ID")
}

// messages --folder lists one folder's messages with their flags; folders
// lists the folders with their counts; an unknown folder says where to
// look.
func TestMessagesOfAFolderAndFolders(t *testing.T) {
	e := newTestEnv(t, "")
	e.fake.Lock()
	e.fake.Mailboxes["demo@example.test"] = append(e.fake.Mailboxes["demo@example.test"],
		admin.Message{ID: "M2", Folder: "Archive", Size: 1000, Received: t1, Flags: []string{`\Seen`, `\Flagged`}, From: "c@d.test", Subject: "kept"},
		admin.Message{ID: "M3", Folder: "Lists/go", Size: 500, Received: t1, From: "e@f.test", Subject: "new"})
	e.fake.Unlock()
	out := e.run("", "messages", "demo@example.test", "--folder", "Archive").ok(t).stdout
	row(t, out, "M2", "Archive", `\Seen,\Flagged`, "1000", "B", t1.Local().Format(time.RFC3339), "c@d.test", "kept")
	if strings.Contains(out, "M1") || strings.Contains(out, "M3") {
		t.Errorf("--folder Archive lists other folders' messages:\n%s", out)
	}
	e.run("", "messages", "demo@example.test", "--folder", "Nope").failed(t, 1,
		"homing ctl: no folder Nope in demo@example.test (homing ctl folders demo@example.test lists them)")

	out = e.run("", "folders", "demo@example.test").ok(t).stdout
	row(t, out, "FOLDER", "MESSAGES", "UNSEEN", "SPECIAL-USE", "UIDVALIDITY", "UIDNEXT")
	row(t, out, "INBOX", "1", "1", "-", "1", "2")
	row(t, out, "Archive", "1", "0", `\Archive`, "6", "2")
	row(t, out, "Lists/go", "1", "1", "-", "7", "2")
	e.run("", "folders", "ghost@example.test").failed(t, 1, "homing ctl: no account ghost@example.test (homing ctl accounts lists the accounts)")
	e.run("", "folders").failed(t, 2, "homing ctl: folders needs exactly one ADDRESS")
	if js := e.run("", "--json", "folders", "demo@example.test").ok(t).stdout; !strings.Contains(js, `"specialUse": "\\Sent"`) {
		t.Errorf("--json folders: %s", js)
	}
}
