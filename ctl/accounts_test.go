package ctl

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
)

func TestAccounts(t *testing.T) {
	e := newTestEnv(t, "tok")
	created := t0.Local().Format(time.RFC3339)

	out := e.run("", "accounts").ok(t).stdout
	row(t, out, "ADDRESS", "MESSAGES", "USED", "QUOTA", "PARTITION", "OWNER", "CREATED", "STATE")
	row(t, out, "demo@example.test", "1", "2.9", "KiB", "1.0", "MiB", "3", "n1", created, "active")

	// Flags may follow the address.
	out = e.run("", "accounts", "add", "u1@example.test", "--password", "pw1", "--quota", "2MiB").ok(t).stdout
	if !strings.HasPrefix(out, "created account u1@example.test (partition ") || strings.Contains(out, "password") {
		t.Errorf("add with a password printed %q", out)
	}
	req := e.fake.CallsTo("CreateAccount")[0].Args[0].(admin.CreateAccount)
	if req != (admin.CreateAccount{Address: "u1@example.test", Password: "pw1", QuotaBytes: 2 << 20}) {
		t.Errorf("sent %+v", req)
	}

	// No password: one is generated, sent and printed.
	out = e.run("", "accounts", "add", "u2@example.test").ok(t).stdout
	m := regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(out)
	req = e.fake.CallsTo("CreateAccount")[1].Args[0].(admin.CreateAccount)
	if m == nil || len(m[1]) < 20 || req.Password != m[1] {
		t.Errorf("generated password: printed %q, sent %q", out, req.Password)
	}
	// ... and it differs each time.
	e.run("", "accounts", "add", "u3@example.test").ok(t)
	if again := e.fake.CallsTo("CreateAccount")[2].Args[0].(admin.CreateAccount); again.Password == req.Password {
		t.Errorf("two generated passwords are equal")
	}

	// --json with a generated password: the account plus the password.
	js := e.run("", "accounts", "add", "u4@example.test", "--json").ok(t).stdout
	var withPw struct {
		Address  string `json:"address"`
		Password string `json:"password"`
	}
	if err := json.Unmarshal([]byte(js), &withPw); err != nil || withPw.Address != "u4@example.test" ||
		withPw.Password != e.fake.CallsTo("CreateAccount")[3].Args[0].(admin.CreateAccount).Password {
		t.Errorf("--json add: %s (%v)", js, err)
	}

	e.run("my secret\r\nignored\n", "accounts", "add", "--password-stdin", "u5@example.test").ok(t)
	if got := e.fake.CallsTo("CreateAccount")[4].Args[0].(admin.CreateAccount).Password; got != "my secret" {
		t.Errorf("--password-stdin sent %q", got)
	}

	e.run("", "accounts", "add", "u1@example.test", "--password", "x").failed(t, 1, "homing ctl: account u1@example.test exists already")

	out = e.run("", "accounts", "show", "demo@example.test").ok(t).stdout
	row(t, out, "address:", "demo@example.test")
	row(t, out, "quota:", "1.0", "MiB")
	row(t, out, "created:", created)
	aligned(t, out, "address:", 6)

	e.run("", "accounts", "show", "ghost@example.test").failed(t, 1, "homing ctl: no account ghost@example.test (homing ctl accounts lists the accounts)")

	if out := e.run("", "accounts", "delete", "u1@example.test").ok(t).stdout; out != "deleted account u1@example.test\n" {
		t.Errorf("delete printed %q", out)
	}
	e.run("", "accounts", "delete", "u1@example.test").failed(t, 1, "homing ctl: no account u1@example.test (homing ctl accounts lists the accounts)")
}

func TestAccountsUsageErrors(t *testing.T) {
	e := newTestEnv(t, "")
	for _, c := range []struct {
		args []string
		line string
	}{
		{[]string{"accounts", "add"}, "homing ctl: accounts add needs exactly one ADDRESS"},
		{[]string{"accounts", "add", "a@b", "c@d"}, "homing ctl: accounts add needs exactly one ADDRESS"},
		{[]string{"accounts", "add", "a@b", "--quota", "lots"}, `homing ctl: --quota: "lots" is not a size (bytes, or a number with K, M, G, T)`},
		{[]string{"accounts", "add", "a@b", "--quota", "5X"}, `homing ctl: --quota: "5X": unknown unit (K, M, G, T)`},
		{[]string{"accounts", "add", "a@b", "--password", "p", "--password-stdin"}, "homing ctl: give only one of --password and --password-stdin"},
		{[]string{"accounts", "add", "a@b", "--frobnicate"}, "homing ctl: flag provided but not defined: -frobnicate"},
		{[]string{"accounts", "show"}, "homing ctl: accounts show needs exactly one ADDRESS"},
		{[]string{"accounts", "purge"}, `homing ctl: unknown accounts command "purge" (add, show, delete, import, password, quota, disable, enable)`},
	} {
		r := e.run("", c.args...)
		r.failed(t, 2, c.line)
		if !strings.Contains(r.stderr, "usage: homing ctl") {
			t.Errorf("%v: no usage text", c.args)
		}
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Errorf("usage errors reached the API %d times", n)
	}
}
