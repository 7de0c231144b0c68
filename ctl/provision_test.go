package ctl

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/homing-mail/homing/admin"
)

func TestDomains(t *testing.T) {
	e := newTestEnv(t, "tok")
	e.fake.Lock()
	e.fake.DomainList = []admin.Domain{{Domain: "example.test", State: "active"}, {Domain: "old.test", State: "removing"}}
	e.fake.Unlock()

	out := e.run("", "domains").ok(t).stdout
	row(t, out, "DOMAIN", "STATE")
	row(t, out, "example.test", "active")
	row(t, out, "old.test", "removing")
	if out := e.run("", "domains", "add", "new.test").ok(t).stdout; out != "added domain new.test on every node\n" {
		t.Errorf("add printed %q", out)
	}
	e.run("", "domains", "add", "new.test").failed(t, 1, "homing ctl: domain new.test exists already")
	if out := e.run("", "domains", "remove", "old.test").ok(t).stdout; out != "removed domain old.test from every node\n" {
		t.Errorf("remove printed %q", out)
	}
	e.run("", "domains", "remove", "gone.test").failed(t, 1, "homing ctl: no local domain gone.test")
	var ds []admin.Domain
	if err := json.Unmarshal([]byte(e.run("", "--json", "domains", "list").ok(t).stdout), &ds); err != nil || len(ds) != 2 || ds[1].Domain != "new.test" {
		t.Errorf("--json domains: %+v %v", ds, err)
	}
	e.run("", "domains", "ad", "x.test").failed(t, 2, `homing ctl: unknown domains command "ad" (did you mean add?)`)
	e.run("", "domains", "add").failed(t, 2, "homing ctl: domains add needs exactly one DOMAIN")

	// A removal that waits for members says so, and when to try again.
	e.fake.Lock()
	e.fake.Errs["RemoveDomain"] = &admin.Error{Status: 503, Message: "the removal of example.test waits for be2 to confirm it; the domain stays local on every node until then: remove it again"}
	e.fake.Unlock()
	e.run("", "domains", "remove", "example.test").failed(t, 1,
		"homing ctl: the removal of example.test waits for be2 to confirm it; the domain stays local on every node until then: remove it again (temporary: try again in 5s)")
}

func TestAliases(t *testing.T) {
	e := newTestEnv(t, "tok")
	if out := e.run("", "aliases", "add", "*@example.test", "demo@example.test").ok(t).stdout; out != "alias *@example.test -> demo@example.test\n" {
		t.Errorf("add printed %q", out)
	}
	e.run("", "aliases", "add", "postmaster@example.test", "demo@example.test").ok(t)
	out := e.run("", "aliases").ok(t).stdout
	row(t, out, "ALIAS", "TARGET")
	row(t, out, "*@example.test", "demo@example.test")
	row(t, out, "postmaster@example.test", "demo@example.test")
	e.run("", "aliases", "remove", "postmaster@example.test").ok(t)
	e.run("", "aliases", "remove", "postmaster@example.test").failed(t, 1,
		"homing ctl: no alias postmaster@example.test (homing ctl aliases lists them)")
	e.run("", "aliases", "add", "x@example.test").failed(t, 2, "homing ctl: aliases add needs ALIAS and TARGET")
	// The API's 400 names the field.
	e.run("", "aliases", "add", "nodomain", "demo@example.test").failed(t, 1,
		`homing ctl: alias "nodomain": not of the form local@domain (no @)`)
}

func TestAccountPasswordQuotaState(t *testing.T) {
	e := newTestEnv(t, "tok")
	// As the administrator: a generated password is printed.
	out := e.run("", "accounts", "password", "demo@example.test").ok(t).stdout
	m := regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(out)
	calls := e.fake.CallsTo("SetPassword")
	if m == nil || len(calls) != 1 || calls[0].Args[1] != m[1] || !strings.HasPrefix(out, "password of demo@example.test changed\n") {
		t.Errorf("printed %q, calls %+v", out, calls)
	}
	e.run("new-one-123\n", "accounts", "password", "demo@example.test", "--password-stdin").ok(t)
	if c := e.fake.CallsTo("SetPassword"); c[1].Args[1] != "new-one-123" {
		t.Errorf("--password-stdin sent %+v", c[1].Args)
	}
	// As the account, with the current password (basic auth, no token).
	e.env["HOMING_TOKEN"] = ""
	e.run("new-one-123\nnewer-one-456\n", "accounts", "password", "demo@example.test", "--old-password-stdin", "--password-stdin").ok(t)
	if c := e.fake.CallsTo("ChangePassword"); len(c) != 1 || c[0].Args[2] != "new-one-123" || c[0].Args[3] != "newer-one-456" {
		t.Errorf("ChangePassword calls %+v", c)
	}
	e.run("", "accounts", "password", "demo@example.test", "--old-password", "wrong", "--password", "whatever-789").failed(t, 1,
		"homing ctl: account demo@example.test: the current password is wrong")
	e.env["HOMING_TOKEN"] = "tok"
	// The policy's refusal is the API's words.
	e.fake.Lock()
	e.fake.Errs["SetPassword"] = &admin.Error{Status: 400, Field: "password", Message: "password: at least 8 characters are required (this one has 3)"}
	e.fake.Unlock()
	e.run("", "accounts", "password", "demo@example.test", "--password", "abc").failed(t, 1,
		"homing ctl: account demo@example.test: password: at least 8 characters are required (this one has 3)")

	out = e.run("", "accounts", "quota", "demo@example.test", "2G").ok(t).stdout
	if !strings.HasPrefix(out, "quota of demo@example.test: 2.0 GiB (") {
		t.Errorf("quota printed %q", out)
	}
	if c := e.fake.CallsTo("UpdateAccount"); *c[0].Args[1].(admin.AccountUpdate).QuotaBytes != 2<<30 {
		t.Errorf("quota sent %+v", c)
	}
	e.run("", "accounts", "quota", "demo@example.test", "unlimited").ok(t)
	e.run("", "accounts", "quota", "demo@example.test", "lots").failed(t, 2, `homing ctl: accounts quota: "lots" is not a size (bytes, or a number with K, M, G, T)`)
	out = e.run("", "accounts", "disable", "demo@example.test").ok(t).stdout
	if !strings.Contains(out, "disabled: its mail is refused (550 5.2.1)") {
		t.Errorf("disable printed %q", out)
	}
	row(t, e.run("", "accounts", "show", "demo@example.test").ok(t).stdout, "state:", "disabled")
	e.run("", "accounts", "enable", "demo@example.test").ok(t)
	e.run("", "accounts", "disable", "ghost@example.test").failed(t, 1, "homing ctl: no account ghost@example.test (homing ctl accounts lists the accounts)")
}
