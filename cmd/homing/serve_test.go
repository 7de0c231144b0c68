package main

import (
	"bytes"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	code := run([]string{"serve", "--admin", "0.0.0.0:0", "--smtp", "127.0.0.1:0", "--data", t.TempDir()}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "--admin-token") {
		t.Fatalf("exit %d, stderr %q: want a refusal naming --admin-token", code, errb.String())
	}
}

func TestServeRejectsBadQueueMode(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--queue-mode", "sideways", "--smtp", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data", t.TempDir()}, &out, &errb)
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
	code := run([]string{"serve", "--smtp", busy.Addr().String(), "--admin", "127.0.0.1:0", "--data", t.TempDir()}, &out, &errb)
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
	code = run([]string{"serve", "--smtp", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data", data}, &out, &errb)
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
	run([]string{"serve", "--secret", "0123456789abcdef0123", "--partitions", "5000", "--data", t.TempDir()}, &out, &errb)
	if !strings.Contains(errb.String(), "--secret on the command line is visible in process lists") {
		t.Fatalf("stderr %q, want the warning", errb.String())
	}
	errb.Reset()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123\n"), 0o600)
	run([]string{"serve", "--secret-file", secret, "--partitions", "5000", "--data", t.TempDir()}, &out, &errb)
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
			code := run([]string{"serve", "--smtp", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data", d.dir}, &out, &errb)
			if code != 1 || !strings.Contains(errb.String(), "opening the queue in "+d.dir) || !strings.Contains(errb.String(), "data damaged") ||
				!strings.Contains(errb.String(), "homing check "+d.dir) || strings.Contains(errb.String(), "panic") {
				t.Fatalf("exit %d, stderr %q; want 1 and the queue's damage", code, errb.String())
			}
		})
	}
}
