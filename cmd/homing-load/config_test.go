package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestParseArgsDefaults(t *testing.T) {
	cfg, err := parseArgs([]string{"--smtp", "127.0.0.1:2525", "--admin", "127.0.0.1:8025"}, func(k string) string {
		if k == "HOMING_TOKEN" {
			return "envtok"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.N != 20000 || cfg.Size != 4096 || cfg.C != 20 || cfg.Accounts != 500 || cfg.Domain != "example.test" ||
		cfg.From != "bench@example.test" || cfg.Timeout != 10*time.Minute || cfg.Token != "envtok" || cfg.JSON || cfg.SMTPSource {
		t.Errorf("defaults %+v", cfg)
	}
}

func TestParseArgsErrors(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(t.TempDir(), "homing")
	os.WriteFile(notExec, []byte("x"), 0o644)
	ext := []string{"--smtp", "127.0.0.1:2525", "--admin", "127.0.0.1:8025"}
	cases := []struct {
		args []string
		want string
	}{
		{nil, "give --spawn PATH, or both --smtp ADDR and --admin ADDR"},
		{[]string{"--smtp", "127.0.0.1:2525"}, "give --spawn PATH"},
		{append([]string{"--spawn", exe}, ext...), "not both"},
		{[]string{"--spawn", filepath.Join(t.TempDir(), "missing")}, "--spawn:"},
		{[]string{"--spawn", notExec}, "not an executable file"},
		{append([]string{"--n", "0"}, ext...), "--n must be"},
		{append([]string{"--n", "100000000"}, ext...), "--n must be"},
		{append([]string{"--c", "0"}, ext...), "--c must be"},
		{append([]string{"--accounts", "0"}, ext...), "--accounts must be"},
		{append([]string{"--domain", "bad domain"}, ext...), "is not a domain name"},
		{append([]string{"--domain", "-x.test"}, ext...), "is not a domain name"},
		{append([]string{"--from", "nobody"}, ext...), "--from"},
		{append([]string{"--size", "100"}, ext...), "too small"},
		{append([]string{"--size", "100000000"}, ext...), "--size must be at most"},
		{append([]string{"--timeout", "0s"}, ext...), "--timeout must be positive"},
		{append([]string{"--bogus"}, ext...), "flag provided but not defined"},
		{append(ext, "extra"), `unexpected argument "extra"`},
		{append([]string{"--rate", "-1"}, ext...), "--rate must not be negative"},
		{[]string{"--targets", "homing,qmail", "--spawn", exe}, `unknown target "qmail"`},
		{[]string{"--targets", "homing"}, "--targets homing or cluster: give --spawn PATH"},
		{append([]string{"--targets", "postfix"}, ext...), "give --spawn, not --smtp/--admin"},
		{[]string{"--targets", "homing", "--spawn", exe, "--cluster"}, "name the target cluster instead"},
		{[]string{"--targets", "homing", "--spawn", exe, "--smtp-source"}, "--smtp-source and --targets"},
		{[]string{"--targets", "sink", "--rounds", "0"}, "--rounds must be"},
	}
	for _, c := range cases {
		_, err := parseArgs(c.args, noEnv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseArgs(%q) = %v, want an error containing %q", c.args, err, c.want)
		}
	}
	if _, err := parseArgs([]string{"-h"}, noEnv); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	cfg, err := parseArgs([]string{"--spawn", exe, "--n", "5", "--c", "50", "--serve-arg", "--gossip", "--serve-arg", "127.0.0.1:0"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.sessions() != 5 {
		t.Errorf("sessions = %d, want no more than the messages", cfg.sessions())
	}
	if got := strings.Join(serveArgs(cfg, "/d", "127.0.0.1:1", "127.0.0.1:2", 0), " "); got !=
		"serve --data /d --smtp 127.0.0.1:1 --admin 127.0.0.1:2 --domains example.test --name bench --pop3= --gossip 127.0.0.1:0" {
		t.Errorf("serve args %q", got)
	}
}

func TestParseArgsTargets(t *testing.T) {
	cfg, err := parseArgs([]string{"--targets", " postfix, sink ,"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	// Postfix and the sink need no node.
	if strings.Join(cfg.Targets, "|") != "postfix|sink" || cfg.Rounds != 3 || !cfg.HalfLoad || cfg.Rate != 0 {
		t.Errorf("config %+v", cfg)
	}
}

func TestRunMainUsage(t *testing.T) {
	var out, errb strings.Builder
	if code := runMain([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "-accounts int") {
		t.Errorf("--help: %d %q", code, out.String())
	}
	out.Reset()
	if code := runMain([]string{"--n", "0"}, &out, &errb); code != 2 || out.Len() != 0 || !strings.HasPrefix(errb.String(), "homing-load: ") {
		t.Errorf("usage error: %d stdout %q stderr %q", code, out.String(), errb.String())
	}
}
