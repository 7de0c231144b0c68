package main

import (
	"bytes"
	"context"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/damage"
)

func parseServe(t *testing.T, args []string, file string) (node.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	var cfg node.Config
	var lf, ll, cf string
	serveFlags(fs, &cfg, &lf, &ll, &cf)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if file != "" {
		p := filepath.Join(t.TempDir(), "homing.conf")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := applyConfigFile(fs, p); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

func TestConfigFileAndFlags(t *testing.T) {
	cfg, err := parseServe(t, []string{"--smtp", "127.0.0.1:2999"}, `
# a comment
smtp = 127.0.0.1:2525
domains = a.test, b.test
route = a.test=127.0.0.1:25
--route b.test=127.0.0.1:26
route = *=smarthost.test:587,tls=require
route = c.test=relay.test:25, tls=encrypt
partitions = 8
retry-min = 30s
`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.SMTP != "127.0.0.1:2999" {
		t.Errorf("smtp = %q: the command line must win over the file", cfg.Listen.SMTP)
	}
	if strings.Join(cfg.Domains, ",") != "a.test,b.test" {
		t.Errorf("domains = %v", cfg.Domains)
	}
	if cfg.Routing.Routes["a.test"] != "127.0.0.1:25" || cfg.Routing.Routes["b.test"] != "127.0.0.1:26" {
		t.Errorf("routes = %v, want both (route repeats)", cfg.Routing.Routes)
	}
	if cfg.Routing.Routes["*"] != "smarthost.test:587" || cfg.Routing.RouteTLS["*"] != "require" ||
		cfg.Routing.Routes["c.test"] != "relay.test:25" || cfg.Routing.RouteTLS["c.test"] != "encrypt" || len(cfg.Routing.RouteTLS) != 2 {
		t.Errorf("routes %v, their TLS %v", cfg.Routing.Routes, cfg.Routing.RouteTLS)
	}
	if cfg.Store.Partitions != 8 || cfg.Queue.MinBackoff.String() != "30s" {
		t.Errorf("partitions %d retry-min %v", cfg.Store.Partitions, cfg.Queue.MinBackoff)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for file, want := range map[string]string{
		"nosuch = 1\n":        `unknown setting "nosuch"`,
		"partitions = many\n": "partitions",
		"route = nothing\n":   "DOMAIN=HOST:PORT",
		"config = other.conf": `unknown setting "config"`,
	} {
		_, err := parseServe(t, nil, file)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("file %q: err = %v, want it to mention %q", file, err, want)
		}
	}
}

func TestServeRefusesOpenAdminWithoutToken(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--pop3", "127.0.0.1:0", "--admin", "0.0.0.0:0", "--smtp", "127.0.0.1:0", "--data", t.TempDir()}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "--admin-token") {
		t.Fatalf("exit %d, stderr %q: want a refusal naming --admin-token", code, errb.String())
	}
}

func TestServeRejectsBadQueueMode(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--pop3", "127.0.0.1:0", "--queue-mode", "sideways", "--smtp", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data", t.TempDir()}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "--queue-mode") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// A failed start prints the real reason and exits 1: a port in use, a data
// directory another process holds (here: this test's open queue store).
func TestServeFailedStartPrintsTheReason(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--pop3", "127.0.0.1:0", "--smtp", busy.Addr().String(), "--admin", "127.0.0.1:0", "--data", t.TempDir()}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "homing serve: --smtp "+busy.Addr().String()) ||
		!strings.Contains(errb.String(), "address already in use") || strings.Contains(errb.String(), "panic") {
		t.Fatalf("busy port: exit %d, stderr %q", code, errb.String())
	}

	data := t.TempDir()
	q, err := storage.OpenQueue(filepath.Join(data, "queue"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	errb.Reset()
	code = run([]string{"serve", "--pop3", "127.0.0.1:0", "--smtp", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data", data}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "opening the queue in "+data) || !strings.Contains(errb.String(), "locked") ||
		strings.Contains(errb.String(), "panic") {
		t.Fatalf("locked data directory: exit %d, stderr %q", code, errb.String())
	}
}

// A secret given on the command line is refused nothing, but warned about:
// every user of the machine can read a process's command line.
func TestServeWarnsAboutASecretOnTheCommandLine(t *testing.T) {
	var out, errb bytes.Buffer
	// --partitions 5000 fails validation right after the flags are read, so
	// no node starts.
	run([]string{"serve", "--pop3", "127.0.0.1:0", "--secret", "0123456789abcdef0123", "--partitions", "5000", "--data", t.TempDir()}, &out, &errb)
	if !strings.Contains(errb.String(), "--secret on the command line is visible in process lists") {
		t.Fatalf("stderr %q, want the warning", errb.String())
	}
	errb.Reset()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123\n"), 0o600)
	run([]string{"serve", "--pop3", "127.0.0.1:0", "--secret-file", secret, "--partitions", "5000", "--data", t.TempDir()}, &out, &errb)
	if strings.Contains(errb.String(), "visible in process lists") {
		t.Fatalf("a secret from a file was warned about: %q", errb.String())
	}
}

// A queue whose files are damaged: homing serve exits 1 with the reason
// and what to do, without a panic (a truncated table made badger panic in
// a goroutine of its own, which no recover reaches).
func TestServeOnADamagedQueueExitsWithTheReason(t *testing.T) {
	for name, damageIt := range map[string]func(t testing.TB, dir string){
		"truncated table":     func(t testing.TB, dir string) { damage.TruncateTable(t, dir) },
		"emptied KEYREGISTRY": damage.EmptyKeyRegistry,
	} {
		t.Run(name, func(t *testing.T) {
			d := writeDataDir(t)
			damageIt(t, filepath.Join(d.dir, "queue"))
			var out, errb bytes.Buffer
			code := run([]string{"serve", "--pop3", "127.0.0.1:0", "--smtp", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data", d.dir}, &out, &errb)
			if code != 1 || !strings.Contains(errb.String(), "opening the queue in "+d.dir) || !strings.Contains(errb.String(), "data damaged") ||
				!strings.Contains(errb.String(), "homing check "+d.dir) || strings.Contains(errb.String(), "panic") {
				t.Fatalf("exit %d, stderr %q; want 1 and the queue's damage", code, errb.String())
			}
		})
	}
}

// `homing version` names the version and the Go version, and the commit
// when the build recorded one.
func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 ||
		!strings.HasPrefix(out.String(), "homing "+node.Version+" ("+runtime.Version()) || !strings.HasSuffix(out.String(), ")\n") {
		t.Fatalf("homing version: %d %q %q", code, out.String(), errb.String())
	}
	info := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "593a7b4c0ffee1234567890abcdef01234567890"}, {Key: "vcs.modified", Value: "false"}}}
	if got, want := versionOf(info), "homing "+node.Version+" ("+runtime.Version()+", commit 593a7b4c0ffe)"; got != want {
		t.Errorf("versionOf = %q, want %q", got, want)
	}
	info.Settings[2].Value = "true"
	if got := commitOf(info); got != "593a7b4c0ffe+modified" {
		t.Errorf("modified tree: %q", got)
	}
	if got := versionOf(&debug.BuildInfo{}); got != "homing "+node.Version+" ("+runtime.Version()+")" {
		t.Errorf("without VCS information: %q", got)
	}
	if commitOf(nil) != "" {
		t.Errorf("commitOf(nil)")
	}
}

// --demo is off unless asked for: a production node never gets an
// account with a printed password.
func TestDemoOffByDefault(t *testing.T) {
	cfg, err := parseServe(t, nil, "")
	if err != nil || cfg.DemoAccount {
		t.Fatalf("demo %v (%v), want off", cfg.DemoAccount, err)
	}
	if cfg, err = parseServe(t, []string{"--demo"}, ""); err != nil || !cfg.DemoAccount {
		t.Fatalf("--demo: %v (%v)", cfg.DemoAccount, err)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "\n\t$(HOMING) serve --demo\n") {
		t.Errorf("make run does not pass --demo")
	}
	// The banner of a node without the demo account says how to add
	// one, and where the console is.
	c := node.Config{Name: "n1", Listen: node.Listen{SMTP: "127.0.0.1:0"}, Admin: node.Admin{Addr: "127.0.0.1:0"},
		Store: node.Store{DataDir: t.TempDir(), Partitions: 2}}
	n, err := node.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var out bytes.Buffer
	banner(&out, n)
	for _, want := range []string{"console http://" + n.AdminAddr() + "/console/", "accounts add you@example.test"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "Demo account") {
		t.Errorf("a demo account without --demo:\n%s", out.String())
	}
}

// --check-config: 0 and a summary for a configuration a node can start
// with, 2 and the reason for one it cannot; it opens no listener (a busy
// port is no error) and no store (the data directory is not created).
func TestCheckConfig(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := filepath.Join(t.TempDir(), "not-created")
	good := []string{"serve", "--check-config", "--smtp", busy.Addr().String(), "--admin", "127.0.0.1:0", "--data", data}
	var out, errb bytes.Buffer
	if code := run(good, &out, &errb); code != 0 || !strings.Contains(out.String(), "configuration OK") || errb.Len() != 0 {
		t.Fatalf("a good configuration: %d %q %q", code, out.String(), errb.String())
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("--check-config touched the data directory: %v", err)
	}
	dir := t.TempDir()
	badConf := filepath.Join(dir, "bad.conf")
	os.WriteFile(badConf, []byte("smtp = 127.0.0.1:2525\nwhat = ever\n"), 0o600)
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("short\n"), 0o600)
	openCreds := filepath.Join(dir, "creds-open")
	os.WriteFile(openCreds, []byte("* user pw\n"), 0o644)
	os.Chmod(openCreds, 0o644)
	badCreds := filepath.Join(dir, "creds-bad")
	os.WriteFile(badCreds, []byte("* user-without-password\n"), 0o600)
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--queue-mode", "sideways"}, "--queue-mode"},
		{[]string{"--admin", "0.0.0.0:8025"}, "--admin-token"},
		{[]string{"--smtp", "127.0.0.1:99999"}, `--smtp 127.0.0.1:99999: port "99999"`},
		{[]string{"--submission", "nowhere"}, "--submission nowhere: want HOST:PORT"},
		{[]string{"--tls-cert", filepath.Join(dir, "none.pem"), "--tls-key", filepath.Join(dir, "none.key")}, "--tls-cert/--tls-key"},
		{[]string{"--tls-cert", filepath.Join(dir, "none.pem")}, "go together"},
		{[]string{"--gossip", "127.0.0.1:0"}, "needs a shared secret"},
		{[]string{"--gossip", "127.0.0.1:0", "--secret-file", secret}, "shorter than 16 bytes"},
		{[]string{"--filter", "spam=/nonexistent/filter"}, "--filter spam"},
		{[]string{"--partitions", "5000"}, "--partitions"},
		{[]string{"--config", badConf}, `unknown setting "what"`},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--route-credentials", openCreds}, "chmod 600"},
		{[]string{"--route-credentials", badCreds}, "line 1: want KEY USER PASSWORD"},
		{[]string{"--route-credentials", filepath.Join(dir, "none")}, "--route-credentials"},
		{[]string{"--relay-ca-file", notPEM}, "no PEM certificate"},
		{[]string{"--route", "a.test=h.test:25,tls=sometimes"}, "want may, encrypt or require"},
		{[]string{"--route", "a.test=h.test:25,auth=yes"}, "unknown option"},
		{[]string{"--acme-directory", "http://ca.test/dir"}, "want an https:// URL"},
		{[]string{"--acme-email", "x@y.test"}, "need --acme-directory"},
		{[]string{"--acme-directory", "https://ca.test/dir", "--acme-email", "nobody"}, "--acme-email"},
		{[]string{"--acme-directory", "https://ca.test/dir", "--hostname", "localhost"}, "give --acme-names"},
		{[]string{"--acme-directory", "https://ca.test/dir", "--acme-names", "mx.test,10.0.0.1"}, "no IP address"},
		{[]string{"--acme-directory", "https://ca.test/dir", "--tls-cert", filepath.Join(dir, "c.pem"), "--tls-key", filepath.Join(dir, "k.pem")}, "choose one"},
		{[]string{"--acme-directory", "https://ca.test/dir", "--acme-names", "mx.test", "--acme-ca-roots", badConf}, "no PEM certificate"},
		{[]string{"--acme-directory", "https://ca.test/dir", "--acme-names", "mx.test", "--acme-http", "80"}, "--acme-http 80"},
	} {
		out.Reset()
		errb.Reset()
		code := run(append([]string{"serve", "--check-config", "--data", data}, c.args...), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), c.want) || strings.Contains(out.String(), "configuration OK") {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want 2 and %q", c.args, code, errb.String(), out.String(), c.want)
		}
	}
}

// homing.conf.example lists every setting of homing serve (set or
// commented out), parses with the real flags, and is a configuration a
// node can start with.
func TestExampleConfig(t *testing.T) {
	const path = "../../homing.conf.example"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	var cfg node.Config
	var lf, ll, cf, sf, rf string
	var check bool
	serveFlags(fs, &cfg, &lf, &ll, &cf)
	serveToolFlags(fs, &sf, &rf, &check, new(time.Duration), new(int))
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(fs, path); err != nil {
		t.Fatalf("the example does not parse: %v", err)
	}
	listed := map[string]bool{}
	setting := regexp.MustCompile(`^#? ?([a-z0-9-]+) =`)
	for _, line := range strings.Split(string(b), "\n") {
		if m := setting.FindStringSubmatch(line); m != nil {
			listed[m[1]] = true
			if fs.Lookup(m[1]) == nil {
				t.Errorf("the example names %q, which is no setting", m[1])
			}
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		// test-* flags are hooks of the tests (their usage says TESTS
		// ONLY), not settings an administrator writes down.
		if f.Name != "config" && f.Name != "check-config" && !strings.HasPrefix(f.Name, "test-") && !listed[f.Name] {
			t.Errorf("the example does not list %q (%s)", f.Name, f.Usage)
		}
	})
	if cfg.Name != "mx1" || cfg.Listen.SMTP != "0.0.0.0:25" || strings.Join(cfg.Domains, ",") != "example.com,example.org" || lf != "json" {
		t.Errorf("parsed %+v, log format %q", cfg, lf)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--pop3", "127.0.0.1:0", "--config", path, "--check-config"}, &out, &errb); code != 0 {
		t.Fatalf("--check-config on the example: %d %q", code, errb.String())
	}
}

// examples/homing.service passes systemd-analyze verify without a warning
// (an unknown or misspelt key is one) and its exposure is at most 2.0
// ("OK") by systemd-analyze security, offline: no running systemd needed.
func TestSystemdUnit(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("this test needs systemd-analyze (Debian's systemd package; .ci/run installs it): %v", err)
	}
	b, err := os.ReadFile("../../examples/homing.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"\nDynamicUser=yes\n", "\nProtectSystem=strict\n", "\nReadWritePaths=/var/lib/homing\n",
		"\nNoNewPrivileges=yes\n", "\nPrivateTmp=yes\n", "\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
		"\nLoadCredential=secret:/etc/homing/secret\n", "\nRestart=on-failure\n", "\nLimitNOFILE=", "--check-config\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	// verify checks that the programs exist: the test binary stands in
	// for /usr/local/bin/homing.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "homing.service")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(unit, "/usr/local/bin/homing", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", file).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=true", "--threshold=20", file).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
	}
	// The test can fail: a misspelt key is reported.
	os.WriteFile(file, []byte(strings.ReplaceAll(strings.ReplaceAll(unit, "/usr/local/bin/homing", self), "PrivateTmp=", "PrivatTmp=")), 0o644)
	if out, _ := exec.Command(sa, "verify", file).CombinedOutput(); !strings.Contains(string(out), "PrivatTmp") {
		t.Errorf("systemd-analyze verify does not report a misspelt key: %s", out)
	}
}

// --min-free-space takes bytes or a size with a binary unit, from the
// command line and the config file alike.
func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "134217728": 128 << 20, "128MiB": 128 << 20, "128M": 128 << 20,
		"2GiB": 2 << 30, "2 GB": 2 << 30, "64k": 64 << 10, "1T": 1 << 40} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "12XB", "1.5G", "99999999999T"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q) accepted", bad)
		}
	}
}
