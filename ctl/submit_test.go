package ctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homing-mail/homing/admin"
)

func TestSubmit(t *testing.T) {
	e := newTestEnv(t, "admintok")
	file := filepath.Join(t.TempDir(), "msg.eml")
	msg := "From: demo@example.test\r\nSubject: s\r\n\r\nhello\r\n"
	if err := os.WriteFile(file, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := e.run("", "submit", "--user", "demo@example.test", "--password", "s3cret", "--to", "a@x.test, b@x.test", "--to", "c@x.test", file).ok(t).stdout
	if out != "queued SUB1\n" {
		t.Errorf("stdout %q", out)
	}
	e.env["HOMING_PASSWORD"] = "s3cret"
	out = e.run(msg, "submit", "--user", "demo@example.test", "--to", "a@x.test", "-", "--json").ok(t).stdout
	var res admin.SubmitResponse
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ID != "SUB2" {
		t.Errorf("--json submit %q", out)
	}
	e.fake.Lock()
	sub := e.fake.Submitted
	e.fake.Unlock()
	if len(sub) != 2 || strings.Join(sub[0].To, " ") != "a@x.test b@x.test c@x.test" || string(sub[0].Raw) != msg || string(sub[1].Raw) != msg {
		t.Errorf("submitted %+v", sub)
	}

	e.run(msg, "submit", "--user", "demo@example.test", "--password", "nope", "--to", "a@x.test").failed(t, 1, "homing ctl: submit: authentication failed (check --user and --password)")
	e.run("", "submit", "--password", "p", "--to", "a@x.test").failed(t, 2, "homing ctl: submit needs --user")
	e.run("", "submit", "--user", "u@x", "--password", "p").failed(t, 2, "homing ctl: submit needs --to")
	e.run("", "submit", "--user", "u@x", "--password", "p", "--to", "a@x.test", "-").failed(t, 1, "homing ctl: the message is empty")
}

// A file with Unix line ends is sent with CRLF; CRLF stays as it is.
func TestSubmitLineEnds(t *testing.T) {
	e := newTestEnv(t, "")
	dir := t.TempDir()
	for name, c := range map[string]struct{ in, sent string }{
		"lf":    {"From: demo@example.test\nSubject: s\n\nhello\n", "From: demo@example.test\r\nSubject: s\r\n\r\nhello\r\n"},
		"crlf":  {"Subject: s\r\n\r\nhello\r\n", "Subject: s\r\n\r\nhello\r\n"},
		"mixed": {"Subject: s\r\n\nhello\nbye\r\n", "Subject: s\r\n\r\nhello\r\nbye\r\n"},
		"nolf":  {"Subject: s\n\nno end", "Subject: s\r\n\r\nno end"},
	} {
		file := filepath.Join(dir, name+".eml")
		if err := os.WriteFile(file, []byte(c.in), 0o600); err != nil {
			t.Fatal(err)
		}
		e.run("", "submit", "--user", "demo@example.test", "--password", "s3cret", "--to", "a@x.test", file).ok(t)
		e.run(c.in, "submit", "--user", "demo@example.test", "--password", "s3cret", "--to", "a@x.test", "-").ok(t)
		e.fake.Lock()
		sub := e.fake.Submitted
		e.fake.Unlock()
		for _, s := range sub[len(sub)-2:] {
			if string(s.Raw) != c.sent {
				t.Errorf("%s: sent %q, want %q", name, s.Raw, c.sent)
			}
		}
	}
}
