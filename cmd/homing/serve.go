package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/homing-mail/homing/node"
)

func versionString() string {
	return fmt.Sprintf("homing %s (%s)", node.Version, runtime.Version())
}

// listFlag is a comma-separated list flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = nil
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l = append(*l, x)
		}
	}
	return nil
}

// routeFlag collects repeated --route DOMAIN=HOST:PORT.
type routeFlag map[string]string

func (r routeFlag) String() string {
	var s []string
	for k, v := range r {
		s = append(s, k+"="+v)
	}
	return strings.Join(s, ",")
}
func (r routeFlag) Set(v string) error {
	d, hp, ok := strings.Cut(v, "=")
	if !ok || d == "" || hp == "" {
		return fmt.Errorf("want DOMAIN=HOST:PORT (or *=HOST:PORT for a smarthost), got %q", v)
	}
	r[strings.ToLower(d)] = hp
	return nil
}

// filterFlag collects repeated --filter NAME=COMMAND ARGS.
type filterFlag map[string][]string

func (f filterFlag) String() string { return fmt.Sprint(map[string][]string(f)) }
func (f filterFlag) Set(v string) error {
	name, cmd, ok := strings.Cut(v, "=")
	args := strings.Fields(cmd)
	if !ok || name == "" || len(args) == 0 {
		return fmt.Errorf("want NAME=COMMAND [ARGS...], got %q", v)
	}
	f[name] = args
	return nil
}

// serveFlags binds every setting of `homing serve` to cfg.
func serveFlags(fs *flag.FlagSet, cfg *node.Config, logFormat, logLevel *string, configFile *string) {
	cfg.Routes = map[string]string{}
	roles := (*listFlag)(&cfg.Roles)
	domains := (*listFlag)(&cfg.Domains)
	fs.StringVar(configFile, "config", "", "config file: one 'name = value' per line, names as these flags")
	fs.StringVar(&cfg.Name, "name", "", "node name, unique in the cluster (default: the host name)")
	fs.Var(roles, "roles", "node roles: frontend, backend, or frontend,backend (default both)")
	fs.StringVar(&cfg.SMTPAddr, "smtp", "127.0.0.1:2525", "SMTP listener address")
	fs.StringVar(&cfg.SubmissionAddr, "submission", "", "submission listener address (AUTH required); empty = off")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate chain for STARTTLS on the SMTP and submission listeners")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&cfg.AdminAddr, "admin", "127.0.0.1:8025", "admin HTTP API address")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "bearer token for the admin API (required off loopback)")
	fs.StringVar(&cfg.AdminReadToken, "admin-read-token", "", "read-only bearer token for the admin API")
	join := (*listFlag)(&cfg.Join)
	fs.StringVar(&cfg.Gossip, "gossip", "", "gossip (memberlist) listen address; with --join, makes this node part of a cluster")
	fs.StringVar(&cfg.ClusterAddr, "cluster-addr", "", "cluster channel listen address (default 127.0.0.1:7947 in a cluster)")
	fs.Var(join, "join", "seed nodes' gossip addresses, comma-separated (retried until one answers)")
	fs.StringVar(&cfg.Secret, "secret", "", "cluster secret (gossip encryption, channel mTLS); prefer --secret-file or $HOMING_SECRET")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "allow a cluster without a secret (trusted test networks only)")
	fs.StringVar(&cfg.ClusterName, "cluster-name", "homing", "cluster name; nodes of other clusters are refused")
	fs.StringVar(&cfg.StaticPartitions, "static-partitions", "", "static cluster: the partitions this backend owns, e.g. 0-7,12")
	fs.BoolVar(&cfg.GossipFast, "gossip-fast", false, "shrink gossip timers (a crash is detected in under a second; tests and homing dev)")
	fs.StringVar(&cfg.DataDir, "data", "data", "data directory (queue, and accounts unless --account-store)")
	fs.StringVar(&cfg.AccountStore, "account-store", "", "account store root (default DATA/accounts)")
	fs.IntVar(&cfg.Partitions, "partitions", 16, "account partitions (fixed when the store is created)")
	fs.Var(domains, "domains", "local domains, comma-separated (default example.test)")
	fs.StringVar(&cfg.Hostname, "hostname", "", "host name in the SMTP greeting, Received and DSNs (default: --name)")
	fs.StringVar(&cfg.SyncMode, "sync", "syncfs", "durability: syncfs (one syncfs round shared by all stores of a filesystem) or fsync (per store; for network filesystems)")
	fs.StringVar(&cfg.QueueMode, "queue-mode", "locally", "queue processing: locally, locally-for-others, remotely")
	cfg.Filters = map[string][]string{}
	fs.Var(filterFlag(cfg.Filters), "filter", "external filter NAME=COMMAND [ARGS...] speaking the CommuniGate helper protocol (repeatable)")
	fs.Var((*listFlag)(&cfg.ForwardTo), "forward-to", "send non-local mail to these HOST:PORTs instead of relaying it; * = the cluster's frontends")
	fs.Var(routeFlag(cfg.Routes), "route", "static relay route DOMAIN=HOST:PORT (repeatable; * = smarthost)")
	fs.Int64Var(&cfg.MaxMessageBytes, "max-message-size", 32<<20, "largest message accepted, bytes")
	fs.IntVar(&cfg.MaxRecipients, "max-recipients", 1000, "most recipients per message")
	fs.IntVar(&cfg.MaxConnections, "max-connections", 1000, "most concurrent SMTP connections")
	fs.IntVar(&cfg.MaxConnectionsPerIP, "max-connections-per-ip", 50, "most concurrent SMTP connections from one IP")
	fs.DurationVar(&cfg.CommandTimeout, "command-timeout", 5*time.Minute, "SMTP command timeout (RFC 5321 §4.5.3.2)")
	fs.DurationVar(&cfg.DataTimeout, "data-timeout", 10*time.Minute, "timeout for the whole DATA phase")
	fs.DurationVar(&cfg.MinBackoff, "retry-min", 5*time.Minute, "first retry delay (doubles per attempt)")
	fs.DurationVar(&cfg.MaxBackoff, "retry-max", 4000*time.Second, "longest retry delay")
	fs.DurationVar(&cfg.MaxLifetime, "queue-lifetime", 5*24*time.Hour, "give up and bounce after this long in the queue")
	fs.DurationVar(&cfg.DelayWarning, "delay-warning", 0, "send a delayed-delivery DSN after this long (0 = never)")
	fs.DurationVar(&cfg.OverQuotaTimeout, "over-quota-timeout", 24*time.Hour, "a full mailbox fails permanently after this long")
	fs.IntVar(&cfg.RelayConcurrency, "relay-concurrency", 20, "most simultaneous SMTP transactions per destination domain")
	fs.DurationVar(&cfg.LookupCacheTTL, "lookup-cache-ttl", 30*time.Second, "reuse a positive RCPT-time account lookup this long (negative: always ask the owner)")
	fs.DurationVar(&cfg.LocalRetry, "local-retry", 15*time.Second, "retry delay cap when the owning backend did not answer")
	fs.DurationVar(&cfg.AccountIdle, "account-idle", 2*time.Minute, "passivate an account actor after this long idle")
	fs.BoolVar(&cfg.DemoAccount, "demo", true, "create the demo account demo@FIRST-DOMAIN on first start")
	fs.StringVar(logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

// applyConfigFile sets every flag named in the file that was not given on
// the command line. Lines are `name = value` (or `name value`); # starts a
// comment; a name may repeat for repeatable flags (route).
func applyConfigFile(fs *flag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		// The name runs to the first space or '='; then an optional '='.
		end := strings.IndexAny(text, " \t=")
		if end < 0 {
			return fmt.Errorf("%s:%d: want `name = value`", path, line)
		}
		name, value := strings.TrimPrefix(text[:end], "--"), strings.TrimSpace(text[end:])
		value = strings.TrimSpace(strings.TrimPrefix(value, "="))
		ok := value != ""
		if !ok || name == "" {
			return fmt.Errorf("%s:%d: want `name = value`", path, line)
		}
		if name == "config" || fs.Lookup(name) == nil {
			return fmt.Errorf("%s:%d: unknown setting %q", path, line, name)
		}
		if explicit[name] {
			continue
		}
		if err := fs.Set(name, strings.Trim(value, `"`)); err != nil {
			return fmt.Errorf("%s:%d: %s: %v", path, line, name, err)
		}
	}
	return sc.Err()
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format: %q is not text or json", format)
	}
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("homing serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg node.Config
	var logFormat, logLevel, configFile, secretFile string
	serveFlags(fs, &cfg, &logFormat, &logLevel, &configFile)
	fs.StringVar(&secretFile, "secret-file", "", "file holding the cluster secret")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "homing serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if configFile != "" {
		if err := applyConfigFile(fs, configFile); err != nil {
			fmt.Fprintf(stderr, "homing serve: config: %v\n", err)
			return 2
		}
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			fmt.Fprintf(stderr, "homing serve: --secret-file: %v\n", err)
			return 2
		}
		cfg.Secret = strings.TrimSpace(string(b))
	}
	if cfg.Secret == "" {
		cfg.Secret = os.Getenv("HOMING_SECRET")
	}
	log, err := newLogger(stderr, logFormat, logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "homing serve: %v\n", err)
		return 2
	}
	cfg.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "homing serve: %v\n", err)
		return 1
	}
	banner(stdout, n)
	<-ctx.Done()
	fmt.Fprintln(stdout, "homing: shutting down")
	if err := n.Close(); err != nil {
		fmt.Fprintf(stderr, "homing serve: shutdown: %v\n", err)
		return 1
	}
	return 0
}

func banner(w io.Writer, n *node.Node) {
	fmt.Fprintf(w, "%s: node %q ready\n", versionString(), n.Name())
	fmt.Fprintf(w, "  SMTP   %s\n", n.SMTPAddr())
	if a := n.SubmissionAddr(); a != "" {
		fmt.Fprintf(w, "  submission %s\n", a)
	}
	fmt.Fprintf(w, "  admin  http://%s/api/v1/\n", n.AdminAddr())
	addr, pw := n.Demo()
	if addr == "" {
		return
	}
	host, port := splitHostPort(n.SMTPAddr())
	fmt.Fprintf(w, "\nDemo account: %s\n", addr)
	if pw != "" {
		fmt.Fprintf(w, "    password: %s\n", pw)
	}
	fmt.Fprintf(w, "\nSend it mail:\n  swaks --server %s --port %s --to %s --from you@example.net\n", host, port, addr)
	fmt.Fprintf(w, "Read it:\n  bin/homing ctl --admin %s messages %s\n  bin/homing ctl --admin %s message %s ID\n",
		n.AdminAddr(), addr, n.AdminAddr(), addr)
}

func splitHostPort(hp string) (string, string) {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 {
		return hp, ""
	}
	return strings.Trim(hp[:i], "[]"), hp[i+1:]
}
