package ctl

import (
	"strings"
	"testing"
	"time"
)

func TestMessages(t *testing.T) {
	e := newTestEnv(t, "")
	out := e.run("", "messages", "demo@example.test").ok(t).stdout
	row(t, out, "ID", "FOLDER", "SIZE", "RECEIVED", "FROM", "SUBJECT")
	// The terminal escape in the subject is neutralised.
	row(t, out, "M1", "INBOX", "4.0", "KiB", t0.Local().Format(time.RFC3339), "a@b.test", "hi", "?[31mred")
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
