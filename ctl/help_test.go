package ctl

import (
	"strings"
	"testing"
)

// Every command has its own help with an example, shown by `help CMD`,
// `CMD --help` and `CMD -h` (and a subcommand's -h), on stdout with exit
// 0; its synopsis lines are those of the overview.
func TestHelpPerCommand(t *testing.T) {
	e := newTestEnv(t, "")
	for name, text := range helpTexts() {
		t.Run(name, func(t *testing.T) {
			if !strings.HasPrefix(text, "usage: homing ctl "+name) {
				t.Errorf("the help of %s starts %q", name, text[:min(len(text), 40)])
			}
			if !strings.Contains(text, "\nexample") {
				t.Errorf("the help of %s has no example", name)
			}
			for _, args := range [][]string{{"help", name}, {name, "--help"}, {name, "-h"}, {"--json", name, "-h"}} {
				r := e.run("", args...)
				if r.code != 0 || r.stderr != "" || r.stdout != text+globalFlags {
					t.Errorf("%v: exit %d, stderr %q, stdout %q", args, r.code, r.stderr, r.stdout)
				}
			}
			// Each synopsis line is in the overview, with the same words.
			for _, line := range strings.Split(text, "\n") {
				syn, ok := strings.CutPrefix(line, "usage: homing ctl ")
				if !ok {
					syn, ok = strings.CutPrefix(line, "       homing ctl ")
				}
				if ok && !strings.Contains(usage, "\n  "+syn) {
					t.Errorf("the overview does not list %q", syn)
				}
			}
		})
	}
	for want, args := range map[string][]string{
		accountsHelp: {"accounts", "add", "-h"},
		queueHelp:    {"queue", "show", "--help"},
		settingsHelp: {"settings", "set", "-h"},
		nodesHelp:    {"help", "node"},
		readyHelp:    {"health", "--help"},
	} {
		if r := e.run("", args...); r.code != 0 || r.stdout != want+globalFlags {
			t.Errorf("%v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
	if r := e.run("", "help", "accounts"); !strings.Contains(r.stdout, "accounts import FILE") || strings.Contains(r.stdout, "queue retry --all") {
		t.Errorf("help accounts is not the accounts help:\n%s", r.stdout)
	}
	// A usage error shows the command's help, not the whole overview.
	r := e.run("", "queue", "retry")
	if r.code != 2 || !strings.Contains(r.stderr, queueHelp) || strings.Contains(r.stderr, "accounts import") {
		t.Errorf("usage error: exit %d, stderr %q", r.code, r.stderr)
	}
}

// An unknown command or subcommand suggests the nearest when it looks like
// a typo of it.
func TestUnknownCommandSuggests(t *testing.T) {
	e := newTestEnv(t, "")
	for in, want := range map[string]string{
		"acounts":  `homing ctl: unknown command "acounts" (did you mean accounts?)`,
		"queu":     `homing ctl: unknown command "queu" (did you mean queue?)`,
		"qeueu":    `homing ctl: unknown command "qeueu" (did you mean queue?)`,
		"nodse":    `homing ctl: unknown command "nodse" (did you mean nodes?)`,
		"Stats":    `homing ctl: unknown command "Stats" (did you mean stats?)`,
		"acount":   `homing ctl: unknown command "acount" (did you mean accounts?)`,
		"journy":   `homing ctl: unknown command "journy" (did you mean journey?)`,
		"frobnify": `homing ctl: unknown command "frobnify" (homing ctl help lists the commands)`,
		"x":        `homing ctl: unknown command "x" (homing ctl help lists the commands)`,
	} {
		e.run("", in).failed(t, 2, want)
	}
	e.run("", "help", "acounts").failed(t, 2, `homing ctl: unknown command "acounts" (did you mean accounts?)`)
	e.run("", "accounts", "ad", "x@example.test").failed(t, 2, `homing ctl: unknown accounts command "ad" (did you mean add?)`)
	e.run("", "queue", "hodl", "Q1").failed(t, 2, `homing ctl: unknown queue command "hodl" (did you mean hold?)`)
	e.run("", "queue", "flush").failed(t, 2, `homing ctl: unknown queue command "flush" (show, retry, hold, release, delete)`)
	e.run("", "settings", "sett").failed(t, 2, `homing ctl: unknown settings command "sett" (did you mean set?)`)
	if len(e.fake.Calls()) != 0 {
		t.Errorf("a typo reached the API: %v", e.fake.Calls())
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"queue", "queue", 0}, {"queu", "queue", 1},
		{"qeueu", "queue", 2}, {"qeuue", "queue", 1}, {"kitten", "sitting", 3}, {"acount", "accounts", 2},
	} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}
