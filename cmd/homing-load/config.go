package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Limits that keep a run meaningful and the message headers fixed-width.
const (
	maxMessages = 99_999_999 // the message number in the header has 8 digits
	maxAccounts = 1_000_000
	maxSize     = 64 << 20
)

// config is one run's parameters, from the command line.
type config struct {
	Spawn string // path of the homing binary to start; "" = use SMTP/Admin
	// Cluster: with Spawn, start `homing dev` (1 frontend, 2 backends as
	// real processes) and load its frontend.
	Cluster bool
	SMTP    string // host:port of a running node's SMTP listener
	Admin   string // its admin API (host:port or URL)
	Token   string // its admin token

	N        int    // messages in total
	Size     int    // bytes per message, header included
	C        int    // concurrent SMTP sessions
	Accounts int    // accounts user0000@Domain ...
	Domain   string // the local domain of the accounts
	From     string // the envelope sender and From: address

	SMTPSource bool          // also run Postfix's smtp-source
	JSON       bool          // print the report as one JSON object
	Timeout    time.Duration // deadline for the deliveries to be counted
	Keep       bool          // keep the spawned node's directory
	ServeArgs  []string      // extra arguments for `homing serve`
	DNS        string        // --dns of the spawned node (set by spawnNode: a server of its own)

	StartTimeout time.Duration // how long a spawned node may take to answer
	StopTimeout  time.Duration // SIGTERM -> SIGKILL grace period
}

const usageText = `usage: homing-load [--spawn PATH_TO_HOMING | --smtp ADDR --admin ADDR [--token T]]
                   [--n 20000] [--size 4096] [--c 20] [--accounts 500]
                   [--domain example.test] [--smtp-source] [--json] [--timeout 10m] [--keep]
                   [--serve-arg ARG]...

Sends N messages of SIZE bytes over C persistent SMTP sessions to ACCOUNTS
accounts round-robin, then waits until the node has stored them all, and
reports accepted and delivered messages per second and latencies.
`

// flagSet declares the flags into cfg; getenv supplies defaults.
func flagSet(cfg *config, getenv func(string) string) *flag.FlagSet {
	fs := flag.NewFlagSet("homing-load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Spawn, "spawn", "", "start this homing binary on a fresh data directory and loopback ports")
	fs.StringVar(&cfg.SMTP, "smtp", "", "SMTP address of a running node")
	fs.StringVar(&cfg.Admin, "admin", "", "admin API address of a running node")
	fs.StringVar(&cfg.Token, "token", getenv("HOMING_TOKEN"), "admin token of a running node (default $HOMING_TOKEN)")
	fs.IntVar(&cfg.N, "n", 20000, "messages in total")
	fs.IntVar(&cfg.Size, "size", 4096, "bytes per message, header included")
	fs.IntVar(&cfg.C, "c", 20, "concurrent SMTP sessions")
	fs.IntVar(&cfg.Accounts, "accounts", 500, "accounts to create and send to, round-robin")
	fs.StringVar(&cfg.Domain, "domain", "example.test", "domain of the accounts")
	fs.StringVar(&cfg.From, "from", "", "envelope sender (default bench@DOMAIN)")
	fs.BoolVar(&cfg.SMTPSource, "smtp-source", false, "afterwards also run Postfix's smtp-source, when it is on PATH")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as one JSON object")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "deadline for all accepted messages to be delivered")
	fs.BoolVar(&cfg.Cluster, "cluster", false, "with --spawn: start a cluster (homing dev: 1 frontend, 2 backends) and load its frontend")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the spawned node's directory (data and node.log)")
	fs.Func("serve-arg", "extra argument for `homing serve` (repeatable)", func(v string) error {
		cfg.ServeArgs = append(cfg.ServeArgs, v)
		return nil
	})
	return fs
}

// printUsage writes the usage text and the flags.
func printUsage(w io.Writer) {
	var cfg config
	fs := flagSet(&cfg, func(string) string { return "" })
	fs.SetOutput(w)
	fmt.Fprint(w, usageText, "\nflags:\n")
	fs.PrintDefaults()
}

// parseArgs reads the command line into a checked config. Its errors are
// usage errors (exit 2); flag.ErrHelp asks for the usage text.
func parseArgs(args []string, getenv func(string) string) (config, error) {
	cfg := config{StartTimeout: time.Minute, StopTimeout: 30 * time.Second}
	fs := flagSet(&cfg, getenv)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.From == "" {
		cfg.From = "bench@" + cfg.Domain
	}
	return cfg, cfg.validate()
}

// validate checks the combination of parameters.
func (c config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch {
	case c.Spawn != "" && (c.SMTP != "" || c.Admin != ""):
		bad("give either --spawn or --smtp and --admin, not both")
	case c.Spawn == "" && (c.SMTP == "" || c.Admin == ""):
		bad("give --spawn PATH, or both --smtp ADDR and --admin ADDR")
	}
	if c.Spawn != "" {
		if st, err := os.Stat(c.Spawn); err != nil {
			bad("--spawn: %v", err)
		} else if st.IsDir() || st.Mode()&0o111 == 0 {
			bad("--spawn: %s is not an executable file", c.Spawn)
		}
	}
	if c.N < 1 || c.N > maxMessages {
		bad("--n must be between 1 and %d", maxMessages)
	}
	if c.C < 1 || c.C > 10000 {
		bad("--c must be between 1 and 10000")
	}
	if c.Accounts < 1 || c.Accounts > maxAccounts {
		bad("--accounts must be between 1 and %d", maxAccounts)
	}
	if !validDomain(c.Domain) {
		bad("--domain %q is not a domain name", c.Domain)
	}
	if l, d, ok := strings.Cut(c.From, "@"); !ok || l == "" || !validDomain(d) || strings.ContainsAny(l, " \t<>@\r\n") {
		bad("--from %q is not an address", c.From)
	}
	if c.Timeout <= 0 {
		bad("--timeout must be positive")
	}
	if c.Size > maxSize {
		bad("--size must be at most %d", maxSize)
	} else if len(errs) == 0 {
		// The smallest size depends on the header block, so check it
		// only when the rest is sound.
		if _, err := newGenerator(c.Size, c.From, c.Domain, c.Accounts); err != nil {
			bad("--size: %v", err)
		}
	}
	return errors.Join(errs...)
}

// validDomain accepts an RFC 5321 §4.1.2 Domain: dot-separated labels of
// letters, digits and hyphens.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// sessions is how many SMTP sessions run: never more than messages.
func (c config) sessions() int { return min(c.C, c.N) }
