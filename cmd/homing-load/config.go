package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
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

	// Targets, when set, makes the run a comparison: the same load
	// against each (homing, cluster, postfix, sink) in Rounds
	// interleaved rounds, and with HalfLoad a run of Homing paced at
	// half its median rate.
	Targets  []string
	Rounds   int
	HalfLoad bool
	Postfix  string  // postfix(1) for the private instance ("" = on PATH)
	Rate     float64 // pace in messages/s; 0 = as fast as the sessions go
	// Idle, with --spawn: after the deliveries, measure the node's CPU
	// over this long once its partitions are idle (IdleWait at most).
	Idle, IdleWait time.Duration

	StartTimeout time.Duration // how long a spawned node may take to answer
	StopTimeout  time.Duration // SIGTERM -> SIGKILL grace period
}

const usageText = `usage: homing-load [--spawn PATH_TO_HOMING | --smtp ADDR --admin ADDR [--token T]]
                   [--n 20000] [--size 4096] [--c 20] [--accounts 500]
                   [--domain example.test] [--smtp-source] [--json] [--timeout 10m] [--keep]
                   [--serve-arg ARG]... [--rate MSGS_PER_SEC]
       homing-load --spawn PATH_TO_HOMING --targets homing,postfix,sink[,cluster]
                   [--rounds 3] [--half-load=true] [--postfix PATH] [--n ...] [--json]

Sends N messages of SIZE bytes over C persistent SMTP sessions to ACCOUNTS
accounts round-robin, then waits until the node has stored them all, and
reports accepted and delivered messages per second and latencies.

With --targets it compares: the same load against a spawned Homing node
(homing), a spawned homing dev cluster (cluster), a private Postfix
instance with a virtual Maildir per account (postfix; needs root) and
smtp-sink (sink, the protocol's ceiling), in ROUNDS interleaved rounds,
each on a fresh instance; it prints every round, the medians and their
ratios, and the p99 DATA->250 of Homing paced at half its median rate.
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
	fs.Func("targets", "compare these targets, comma-separated: homing, cluster, postfix, sink", func(v string) error {
		cfg.Targets = nil
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.Targets = append(cfg.Targets, t)
			}
		}
		return nil
	})
	fs.IntVar(&cfg.Rounds, "rounds", 3, "with --targets: interleaved rounds")
	fs.BoolVar(&cfg.HalfLoad, "half-load", true, "with --targets including homing: also run Homing at half its median delivered rate")
	fs.StringVar(&cfg.Postfix, "postfix", "", "postfix(1) command for the private instance (default: on PATH or /usr/sbin/postfix)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "pace the load at this many messages per second (0: as fast as the sessions go)")
	fs.DurationVar(&cfg.Idle, "idle", 0, "with --spawn (one node): after the deliveries, wait until every partition is idle, then report the node's CPU over this long")
	fs.DurationVar(&cfg.IdleWait, "idle-wait", 10*time.Minute, "with --idle: how long the partitions may take to become idle")
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
	nodeTargets := len(c.Targets) == 0
	for _, t := range c.Targets {
		if !slices.Contains(knownTargets, t) {
			bad("--targets: unknown target %q (known: %s)", t, strings.Join(knownTargets, ", "))
		}
		nodeTargets = nodeTargets || t == targetHoming || t == targetCluster
	}
	if len(c.Targets) > 0 {
		if c.Cluster {
			bad("--cluster and --targets: name the target cluster instead")
		}
		if c.SMTPSource {
			bad("--smtp-source and --targets: the comparison runs its own client against every target")
		}
		if c.SMTP != "" || c.Admin != "" {
			bad("--targets spawns every target afresh each round: give --spawn, not --smtp/--admin")
		}
		if c.Rounds < 1 || c.Rounds > 100 {
			bad("--rounds must be between 1 and 100")
		}
	}
	switch {
	case !nodeTargets:
	case c.Spawn != "" && (c.SMTP != "" || c.Admin != ""):
		bad("give either --spawn or --smtp and --admin, not both")
	case len(c.Targets) > 0 && c.Spawn == "":
		bad("--targets homing or cluster: give --spawn PATH")
	case c.Spawn == "" && (c.SMTP == "" || c.Admin == ""):
		bad("give --spawn PATH, or both --smtp ADDR and --admin ADDR")
	}
	if c.Rate < 0 {
		bad("--rate must not be negative")
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
