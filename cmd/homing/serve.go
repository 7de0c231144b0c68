package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/homing-mail/homing/acme"
	"github.com/homing-mail/homing/cert"
	"github.com/homing-mail/homing/control"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/smtp"
)

func versionString() string {
	info, _ := debug.ReadBuildInfo()
	return versionOf(info)
}

// versionOf is "homing VERSION (GO VERSION, commit REVISION)": the
// commit the binary was built from when the build recorded it (go build
// in a git checkout does; "+modified" when the tree had changes), without
// it otherwise (go test, go run, -buildvcs=false).
func versionOf(info *debug.BuildInfo) string {
	v := fmt.Sprintf("homing %s (%s", node.Version, runtime.Version())
	if c := commitOf(info); c != "" {
		v += ", commit " + c
	}
	return v + ")"
}

// commitOf is the VCS revision recorded in info, shortened to 12
// characters, with "+modified" when the working tree had changes; "" when
// none was recorded.
func commitOf(info *debug.BuildInfo) string {
	if info == nil {
		return ""
	}
	var rev string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "+modified"
	}
	return rev
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

// bytesFlag is a size in bytes: a number, with an optional unit (K, M,
// G, T, also written KB, KiB...: binary units, as homing ctl's quotas).
type bytesFlag int64

func (b *bytesFlag) String() string {
	if b == nil || *b == 0 {
		return "0"
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *bytesFlag) Set(v string) error {
	n, err := parseBytes(v)
	if err != nil {
		return err
	}
	*b = bytesFlag(n)
	return nil
}

// parseBytes reads a size as bytesFlag takes it.
func parseBytes(v string) (int64, error) {
	s := strings.TrimSpace(v)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	num, unit := strings.TrimSpace(s[:i]), strings.ToLower(strings.TrimSpace(s[i:]))
	mult := map[string]int64{"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
		"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a size in bytes, such as 134217728, 128MiB or 2GiB; got %q", v)
	}
	return n * mult, nil
}

// mapCacheFlag is --map-cache: a size as bytesFlag, or "off" (-1).
type mapCacheFlag int64

func (m *mapCacheFlag) String() string {
	if m != nil && *m < 0 {
		return "off"
	}
	return (*bytesFlag)(m).String()
}

func (m *mapCacheFlag) Set(v string) error {
	if strings.EqualFold(strings.TrimSpace(v), "off") {
		*m = -1
		return nil
	}
	return (*bytesFlag)(m).Set(v)
}

// routeFlag collects repeated --route DOMAIN=HOST:PORT[,tls=LEVEL].
type routeFlag struct{ r *node.Routing }

func (f routeFlag) String() string {
	if f.r == nil {
		return ""
	}
	var s []string
	for k, v := range f.r.Routes {
		if lvl, ok := f.r.RouteTLS[k]; ok {
			v += ",tls=" + lvl
		}
		s = append(s, k+"="+v)
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

func (f routeFlag) Set(v string) error {
	d, rest, ok := strings.Cut(v, "=")
	opts := strings.Split(rest, ",")
	hp := strings.TrimSpace(opts[0])
	if !ok || d == "" || hp == "" {
		return fmt.Errorf("want DOMAIN=HOST:PORT[,tls=may|encrypt|require] (or *=HOST:PORT for a smarthost), got %q", v)
	}
	d = strings.ToLower(strings.TrimSpace(d))
	delete(f.r.RouteTLS, d)
	for _, o := range opts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(o), "=")
		if k != "tls" {
			return fmt.Errorf("--route %s: unknown option %q (want tls=may, tls=encrypt or tls=require)", d, o)
		}
		lvl, err := smtp.ParseRouteTLS(val)
		if err != nil {
			return err
		}
		f.r.RouteTLS[d] = string(lvl)
	}
	f.r.Routes[d] = hp
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

// roleFlag is the comma-separated --roles.
type roleFlag []mail.Role

func (r *roleFlag) String() string {
	var s []string
	for _, x := range *r {
		s = append(s, string(x))
	}
	return strings.Join(s, ",")
}
func (r *roleFlag) Set(v string) error {
	*r = nil
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x == "" {
			continue
		}
		role, err := mail.ParseRole(x)
		if err != nil {
			return err
		}
		*r = append(*r, role)
	}
	return nil
}

// serveFlags binds every setting of `homing serve` to cfg. The defaults
// shown are the components' own (node.Defaults): each is written once.
func serveFlags(fs *flag.FlagSet, cfg *node.Config, logFormat, logLevel *string, configFile *string) {
	def := node.Defaults()
	cfg.Routing.Routes = map[string]string{}
	cfg.Routing.RouteTLS = map[string]string{}
	cfg.Routing.Filters = map[string][]string{}
	fs.StringVar(configFile, "config", "", "config file: one 'name = value' per line, names as these flags")
	fs.StringVar(&cfg.Name, "name", "", "node name, unique in the cluster (default: the host name)")
	fs.Var((*roleFlag)(&cfg.Roles), "roles", "node roles: frontend, backend, or frontend,backend (default both)")
	fs.StringVar(&cfg.Listen.SMTP, "smtp", def.Listen.SMTP, "SMTP listener address")
	fs.StringVar(&cfg.Listen.Submission, "submission", "", "submission listener address (AUTH required); empty = off")
	fs.StringVar(&cfg.Listen.IMAP, "imap", "", "IMAP listener address (STARTTLS); empty = off, except 127.0.0.1:1143 when --smtp is not set either; off = off")
	fs.StringVar(&cfg.Listen.IMAPS, "imaps", "", "IMAP listener address with implicit TLS (RFC 8314); empty = off")
	fs.StringVar(&cfg.Listen.TLSCert, "tls-cert", "", "PEM certificate chain for STARTTLS on the SMTP and submission listeners")
	fs.StringVar(&cfg.Listen.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&cfg.Listen.POP3, "pop3", node.DefaultPOP3, "POP3 listener address (STLS; passwords over TLS or from loopback only); empty = off")
	fs.StringVar(&cfg.Listen.POP3S, "pop3s", "", "POP3 over implicit TLS (pop3s, RFC 8314) listener address; empty = off")
	fs.DurationVar(&cfg.POP3LockLease, "pop3-lock-lease", def.POP3LockLease, "how long a POP3 session's maildrop lock holds at the account's owner without renewal (renewed every third; a dead node's lock is free after it)")
	fs.StringVar(&cfg.Admin.Addr, "admin", def.Admin.Addr, "admin HTTP API address")
	fs.StringVar(&cfg.Admin.Token, "admin-token", "", "bearer token for the admin API (required off loopback)")
	fs.StringVar(&cfg.Admin.ReadToken, "admin-read-token", "", "read-only bearer token for the admin API")
	fs.IntVar(&cfg.Admin.MinPasswordLength, "min-password-length", control.DefaultMinPasswordLength, "password policy: the shortest password the API accepts for an account (it must not contain the account's name either)")
	fs.BoolVar(&cfg.Admin.Pprof, "pprof", false, "serve Go's profiler under /debug/pprof/ on the admin listener (behind its token)")
	fs.StringVar(&cfg.Cluster.Gossip, "gossip", "", "gossip (memberlist) listen address; with --join, makes this node part of a cluster")
	fs.StringVar(&cfg.Cluster.Addr, "cluster-addr", "", "cluster channel listen address (default 127.0.0.1:7947 in a cluster)")
	fs.Var((*listFlag)(&cfg.Cluster.Join), "join", "seed nodes' gossip addresses, comma-separated (retried until one answers)")
	fs.StringVar(&cfg.Cluster.Secret, "secret", "", "cluster secret (gossip encryption, channel mTLS); prefer --secret-file or $HOMING_SECRET")
	fs.BoolVar(&cfg.Cluster.Insecure, "insecure", false, "allow a cluster without a secret (trusted test networks only)")
	fs.StringVar(&cfg.Cluster.Name, "cluster-name", def.Cluster.Name, "cluster name; nodes of other clusters are refused")
	fs.StringVar(&cfg.Cluster.StaticPartitions, "static-partitions", "", "static cluster: the partitions this backend owns, e.g. 0-7,12")
	fs.BoolVar(&cfg.Cluster.GossipFast, "gossip-fast", false, "shrink gossip timers (a crash is detected in under a second; tests and homing dev)")
	fs.StringVar(&cfg.Store.DataDir, "data", def.Store.DataDir, "data directory (queue, and accounts unless --account-store)")
	fs.StringVar(&cfg.Store.AccountStore, "account-store", "", "account store root (default DATA/accounts)")
	fs.IntVar(&cfg.Store.Partitions, "partitions", def.Store.Partitions, "account partitions (fixed when the store is created)")
	fs.Var((*listFlag)(&cfg.Domains), "domains", "local domains of a new node, comma-separated (default "+strings.Join(def.Domains, ",")+"); then homing ctl domains changes them for the whole cluster")
	fs.StringVar(&cfg.Hostname, "hostname", "", "host name in the SMTP greeting, Received and DSNs (default: --name)")
	fs.DurationVar(&cfg.Store.JournalRetention, "journal-retention", def.Store.JournalRetention, "how long the journal keeps the steps of each message (homing ctl journey), on disk in DATA/journal")
	fs.Var((*bytesFlag)(&cfg.Store.MinFreeSpace), "min-free-space", "free space on each store's filesystem below which new mail is refused with 452 4.3.1 and Local Delivery waits: bytes, or with a unit (512MiB, 2GiB; 0: 2 x --max-message-size + 64 MiB)")
	fs.Var((*mapCacheFlag)(&cfg.Store.MapCache), "map-cache", "resident memory the stores' mapped files (badger's value logs, memtable logs, tables) may take beyond the start, after which their pages are handed back to the page cache: bytes or with a unit (0: 64MiB; off: no bound)")
	fs.StringVar((*string)(&cfg.Store.Sync), "sync", string(def.Store.Sync), "durability: syncfs (one syncfs round shared by all stores of a filesystem) or fsync (per store; for network filesystems)")
	fs.DurationVar(&cfg.Store.SyncGap, "sync-gap", def.Store.SyncGap, "with --sync syncfs: the longest a sync round is held so that more writes share it: for the writes already under way, and, when no client waits for the round (deliveries, queue records, the journal), for more to come (0: no holding)")
	fs.StringVar((*string)(&cfg.Routing.Mode), "queue-mode", string(def.Routing.Mode), "queue processing: locally, locally-for-others, remotely")
	fs.Var(filterFlag(cfg.Routing.Filters), "filter", "external filter NAME=COMMAND [ARGS...] speaking the CommuniGate helper protocol (repeatable)")
	fs.Var((*listFlag)(&cfg.Routing.ForwardTo), "forward-to", "send non-local mail to these HOST:PORTs instead of relaying it; * = the cluster's frontends")
	fs.Var(routeFlag{&cfg.Routing}, "route", "static relay route DOMAIN=HOST:PORT[,tls=may|encrypt|require] (repeatable; * = smarthost; tls=require: TLS with a verified certificate or nothing, the default with --route-credentials; encrypt: TLS, unverified)")
	fs.Int64Var(&cfg.SMTP.MaxMessageBytes, "max-message-size", def.SMTP.MaxMessageBytes, "largest message accepted, bytes")
	fs.IntVar(&cfg.SMTP.MaxRecipients, "max-recipients", def.SMTP.MaxRecipients, "most recipients per message")
	fs.IntVar(&cfg.SMTP.MaxConnections, "max-connections", def.SMTP.MaxConnections, "most concurrent SMTP connections")
	fs.IntVar(&cfg.SMTP.MaxConnectionsPerIP, "max-connections-per-ip", def.SMTP.MaxConnectionsPerIP, "most concurrent SMTP connections from one IP")
	fs.IntVar(&cfg.SMTP.MaxConnectionsPerNetwork, "max-connections-per-network", def.SMTP.MaxConnectionsPerNetwork, "most concurrent SMTP connections from one client network (see --ipv4-prefix, --ipv6-prefix)")
	fs.IntVar(&cfg.SMTP.ReservedConnections, "reserved-connections", 0, "connection slots kept for networks holding few connections (0: a tenth of --max-connections; negative: none)")
	fs.DurationVar(&cfg.SMTP.CommandTimeout, "command-timeout", def.SMTP.CommandTimeout, "SMTP command timeout (RFC 5321 §4.5.3.2)")
	fs.DurationVar(&cfg.SMTP.DataTimeout, "data-timeout", def.SMTP.DataTimeout, "timeout for the whole DATA phase")
	fs.IntVar(&cfg.SMTP.StressPercent, "stress-percent", def.SMTP.StressPercent, "share of --max-connections in use (percent) from which the server is under stress")
	fs.DurationVar(&cfg.SMTP.StressCommandTimeout, "stress-command-timeout", def.SMTP.StressCommandTimeout, "SMTP command timeout under stress")
	fs.IntVar(&cfg.SMTP.SoftErrorLimit, "soft-error-limit", def.SMTP.SoftErrorLimit, "errors of an SMTP session after which each further error waits --error-sleep")
	fs.IntVar(&cfg.SMTP.HardErrorLimit, "hard-error-limit", def.SMTP.HardErrorLimit, "errors of an SMTP session at which it is closed with 421")
	fs.DurationVar(&cfg.SMTP.ErrorSleep, "error-sleep", def.SMTP.ErrorSleep, "wait before each error reply beyond --soft-error-limit")
	fs.IntVar(&cfg.SMTP.MessageRatePerNetwork, "message-rate-per-network", def.SMTP.MessageRatePerNetwork, "messages a client network may send per --message-rate-interval (0: no limit)")
	fs.IntVar(&cfg.SMTP.MessageRatePerSender, "message-rate-per-sender", def.SMTP.MessageRatePerSender, "messages an authenticated sender may send per --message-rate-interval (negative: no limit)")
	fs.DurationVar(&cfg.SMTP.MessageRateInterval, "message-rate-interval", def.SMTP.MessageRateInterval, "interval of the message rate limits")
	fs.IntVar(&cfg.SMTP.MaxAuthFailures, "max-auth-failures", def.SMTP.MaxAuthFailures, "failed AUTH attempts after which a connection is closed")
	fs.IntVar(&cfg.SMTP.Auth.MaxChecks, "auth-max-checks", def.SMTP.Auth.MaxChecks, "password checks at once (SMTP AUTH, API submit; default: the cores)")
	fs.DurationVar(&cfg.SMTP.Auth.CheckWait, "auth-check-wait", def.SMTP.Auth.CheckWait, "longest wait for a password check slot before a temporary refusal")
	fs.IntVar(&cfg.SMTP.Auth.MaxFailuresPerNetwork, "auth-failures-per-network", def.SMTP.Auth.MaxFailuresPerNetwork, "failed logins from one client network within --auth-failure-window before its logins are refused")
	fs.IntVar(&cfg.SMTP.Auth.MaxFailuresPerAccount, "auth-failures-per-account", def.SMTP.Auth.MaxFailuresPerAccount, "failed logins of one account from one client network within --auth-failure-window before they are refused")
	fs.DurationVar(&cfg.SMTP.Auth.FailureWindow, "auth-failure-window", def.SMTP.Auth.FailureWindow, "how long a failed login counts")
	fs.DurationVar(&cfg.SMTP.Auth.FailureDelay, "auth-failure-delay", def.SMTP.Auth.FailureDelay, "wait before answering a failed login (doubles with recent failures)")
	fs.DurationVar(&cfg.SMTP.Auth.MaxFailureDelay, "auth-max-failure-delay", def.SMTP.Auth.MaxFailureDelay, "longest wait before answering a failed login")
	fs.IntVar(&cfg.SMTP.Auth.IPv4Prefix, "ipv4-prefix", def.SMTP.Auth.IPv4Prefix, "IPv4 client network size (prefix length) of the connection, rate and login limits")
	fs.IntVar(&cfg.SMTP.Auth.IPv6Prefix, "ipv6-prefix", def.SMTP.Auth.IPv6Prefix, "IPv6 client network size (prefix length) of the connection, rate and login limits")
	fs.DurationVar(&cfg.Queue.MinBackoff, "retry-min", def.Queue.MinBackoff, "first retry delay (doubles per attempt)")
	fs.DurationVar(&cfg.Queue.MaxBackoff, "retry-max", def.Queue.MaxBackoff, "longest retry delay")
	fs.DurationVar(&cfg.Queue.MaxLifetime, "queue-lifetime", def.Queue.MaxLifetime, "give up and bounce after this long in the queue")
	fs.DurationVar(&cfg.Queue.DelayWarning, "delay-warning", def.Queue.DelayWarning, "send a delayed-delivery DSN after this long (0 = never)")
	fs.DurationVar(&cfg.Queue.OverQuotaTimeout, "over-quota-timeout", def.Queue.OverQuotaTimeout, "a full mailbox fails permanently after this long")
	fs.IntVar(&cfg.Queue.RelayConcurrency, "relay-concurrency", def.Queue.RelayConcurrency, "most simultaneous SMTP transactions per destination domain")
	fs.DurationVar(&cfg.Queue.LookupCacheTTL, "lookup-cache-ttl", def.Queue.LookupCacheTTL, "reuse a positive RCPT-time account lookup this long (negative: always ask the owner)")
	fs.DurationVar(&cfg.Queue.LocalRetry, "local-retry", def.Queue.LocalRetry, "retry delay cap when the owning backend did not answer")
	fs.DurationVar(&cfg.Queue.TransferConfirmTimeout, "transfer-confirm-timeout", def.Queue.TransferConfirmTimeout,
		"queue mode remotely: process a message here once the member it was handed to has not confirmed or denied holding it for this long")
	fs.StringVar(&cfg.TestKillAfterTransferStored, "test-kill-after-transfer-stored", "",
		"TESTS ONLY: when this file exists as a transfer from a member is stored, remove it and kill this process before the reply")
	fs.DurationVar(&cfg.Queue.AccountIdle, "account-idle", def.Queue.AccountIdle, "passivate an account actor after this long idle")
	fs.IntVar(&cfg.Queue.MaxAccountActors, "max-account-actors", def.Queue.MaxAccountActors, "account actors kept active on this node; beyond it the least recently used passivates early (0: 1024; negative: no bound)")
	fs.DurationVar(&cfg.Queue.PartitionIdle, "partition-idle", def.Queue.PartitionIdle,
		"close a partition's database after this long without a request and with no account active (negative: never; static partitions never)")
	fs.BoolVar(&cfg.DemoAccount, "demo", false, "create the demo account demo@FIRST-DOMAIN with a printed password on first start (make run sets it; never in production)")
	trustFlags(fs, cfg)
	fs.StringVar(logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

// serveToolFlags binds the flags of `homing serve` that are not node
// settings: where the secret is, the ready file, --check-config, the
// shutdown's bound, the process's CPU priority.
func serveToolFlags(fs *flag.FlagSet, secretFile, readyFile *string, checkConfig *bool, shutdownTimeout *time.Duration, nice *int) {
	fs.IntVar(nice, "nice", 0, "CPU priority of the node's threads, as nice(1): 0 (the default) leaves the one it was started with, 1..19 lower, -20..-1 higher (needs CAP_SYS_NICE); for nodes sharing a machine, where the frontend's sessions wait on the CPU the backends' deliveries take (homing dev gives its backends 10)")
	fs.DurationVar(shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "longest wait for a graceful shutdown (SIGTERM, SIGINT) before the process exits anyway with status 1; a second signal exits at once (everything acknowledged is already on disk)")
	fs.StringVar(secretFile, "secret-file", "", "file holding the cluster secret")
	fs.StringVar(readyFile, "ready-file", "", "once the node runs, write its listeners' addresses to this file as JSON (for tools that start it on port 0)")
	fs.BoolVar(checkConfig, "check-config", false, "check the configuration (flags, config file, secret and TLS files) and exit: 0 when it can run, 2 with the reason; opens no store and no listener")
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
		if name == "config" || name == "check-config" || fs.Lookup(name) == nil {
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
	var logFormat, logLevel, configFile, secretFile, readyFile string
	var checkConfig bool
	var shutdownTimeout time.Duration
	var nice int
	serveFlags(fs, &cfg, &logFormat, &logLevel, &configFile)
	serveToolFlags(fs, &secretFile, &readyFile, &checkConfig, &shutdownTimeout, &nice)
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
	secretOnCommandLine := false
	fs.Visit(func(f *flag.Flag) { secretOnCommandLine = secretOnCommandLine || f.Name == "secret" })
	if configFile != "" {
		if err := applyConfigFile(fs, configFile); err != nil {
			fmt.Fprintf(stderr, "homing serve: config: %v\n", err)
			return 2
		}
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	fs.Visit(func(f *flag.Flag) { cfg.DomainsGiven = cfg.DomainsGiven || f.Name == "domains" })
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			fmt.Fprintf(stderr, "homing serve: --secret-file: %v\n", err)
			return 2
		}
		cfg.Cluster.Secret = strings.TrimSpace(string(b))
	}
	if secretOnCommandLine {
		// Any user of the machine can read a process's command line
		// (/proc/PID/cmdline, ps).
		fmt.Fprintln(stderr, "homing serve: warning: --secret on the command line is visible in process lists; use --secret-file or $HOMING_SECRET")
	}
	if cfg.Cluster.Secret == "" {
		cfg.Cluster.Secret = os.Getenv("HOMING_SECRET")
	}
	log, err := newLogger(stderr, logFormat, logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "homing serve: %v\n", err)
		return 2
	}
	cfg.Logger = log
	cfg.LogFields = logFormat == "json"
	if cfg.Store.SyncGap == 0 {
		cfg.Store.SyncGap = -1 // --sync-gap 0: no holding (node.Config's 0 is the default)
	}
	if nice < -20 || nice > 19 {
		fmt.Fprintf(stderr, "homing serve: --nice %d: want -20..19\n", nice)
		return 2
	}
	if checkConfig {
		return checkConfiguration(cfg, stdout, stderr)
	}
	if nice != 0 {
		if err := setNice(nice); err != nil {
			fmt.Fprintf(stderr, "homing serve: --nice: %v\n", err)
			return 1
		}
		log.Info("every thread at CPU priority nice " + strconv.Itoa(nice))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tuneGC()
	tuneProcs()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "homing serve: %v\n", err)
		return 1
	}
	if readyFile != "" {
		if err := writeReady(readyFile, n); err != nil {
			fmt.Fprintf(stderr, "homing serve: --ready-file: %v\n", err)
			n.Close()
			return 1
		}
	}
	banner(stdout, n)
	reloadOnHUP(ctx, n, log)
	<-ctx.Done()
	stop() // a second signal now ends the process at once
	fmt.Fprintln(stdout, "homing: shutting down")
	return shutdown(n, shutdownTimeout, stderr)
}

// serveGOGC is the garbage collector's target for `homing serve` when the
// environment sets none: a new collection when the heap has grown by half
// of what was live at the last one, not Go's default of all of it. Most of
// a busy node's heap is badger's (memtable arenas, table builders: ~300
// MB live under load, pointer-free and cheap to mark), and at GOGC=100
// the resident set was twice that. Measured with `bin/homing-load --spawn
// bin/homing --n 100000 --c 20 --accounts 500` on the 2-core machine: RSS
// after the run 575 MB at 100, 387 MB at 50 (same rate, 1,691 and 1,693
// msg/s, same CPU per message), 323 MB at 25 (14% slower).
const serveGOGC = 50

// tuneGC sets serveGOGC unless GOGC is in the environment (GOMEMLIMIT,
// Go's own, works as always).
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serveGOGC)
	}
}

// serveProcsPerCPU is how many Go processors (GOMAXPROCS) `homing serve`
// runs per CPU Go would use by default, unless GOMAXPROCS is set.
//
// Why more processors than CPUs: badger's background work (memtable
// flushes, compactions: seconds of CPU-bound table building) runs as
// ordinary goroutines. With one processor per CPU, two of them hold both
// processors, and a session's write that becomes runnable waits for Go's
// 10 ms preemption slice: stacks taken 8 ms into a stalled queue commit
// showed the committer runnable and no thread blocked in the kernel.
// With spare processors, the waking goroutine gets one at once and the
// kernel's scheduler, which favours a thread that slept over one that
// burns its slice, runs it within its much shorter slices. Measured with
// `bin/homing-load --spawn bin/homing --n 10000 --c 20 --rate 900` (half
// load) on the 2-core machine, 3 interleaved runs each: DATA->250 p99
// 15.9/11.3/9.5 ms at 2 processors, 8.9/7.9/5.5 ms at 4, for 5% more CPU
// per message.
const serveProcsPerCPU = 2

// tuneProcs sets serveProcsPerCPU unless GOMAXPROCS is in the
// environment. The base is Go's default (the CPUs, or the cgroup's CPU
// quota when lower), taken afresh so that a second call (a test running
// serve twice in one process) does not multiply again. Go stops adjusting
// GOMAXPROCS to a changed quota after this; a restart picks it up.
func tuneProcs() {
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		runtime.SetDefaultGOMAXPROCS()
		runtime.GOMAXPROCS(serveProcsPerCPU * runtime.GOMAXPROCS(0))
	}
}

// checkConfiguration is --check-config: everything a start would refuse
// before it opens a store or a listener (node.Config.Validate: roles,
// modes, partitions, domains, routes, addresses, the cluster secret, the
// admin token off loopback), and the files the start would read: the TLS
// certificate and key, the filters' programs. 0 and a summary when the
// node can start with it, 2 and the reason otherwise.
func checkConfiguration(cfg node.Config, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "homing serve: configuration: %v\n", err)
		return 2
	}
	full := cfg.WithDefaults()
	if err := full.Validate(); err != nil {
		return fail(err)
	}
	if _, err := cert.Server(full.Listen.TLSCert, full.Listen.TLSKey, ""); err != nil {
		return fail(err)
	}
	if err := node.CheckRelayFiles(full); err != nil {
		return fail(err)
	}
	if f := full.Trust.ACME.CARoots; f != "" {
		if _, err := acme.LoadRoots(f); err != nil {
			return fail(err)
		}
	}
	for name, cmd := range full.Routing.Filters {
		if _, err := exec.LookPath(cmd[0]); err != nil {
			return fail(fmt.Errorf("--filter %s: %v", name, err))
		}
	}
	fmt.Fprintf(stdout, "homing serve: configuration OK: node %q, roles %s, SMTP %s, admin %s, data %s",
		full.Name, (*roleFlag)(&full.Roles).String(), full.Listen.SMTP, full.Admin.Addr, full.Store.DataDir)
	if full.Cluster.Enabled() {
		fmt.Fprintf(stdout, ", gossip %s joining %s", full.Cluster.Gossip, strings.Join(full.Cluster.Join, ","))
	}
	fmt.Fprintln(stdout)
	return 0
}

// Ready is what --ready-file holds: the addresses the node's listeners
// are bound to (the real ports when the flags asked for port 0).
type Ready struct {
	Name       string `json:"name"`
	PID        int    `json:"pid"`
	SMTP       string `json:"smtp"`
	Submission string `json:"submission,omitempty"`
	IMAP       string `json:"imap,omitempty"`
	IMAPS      string `json:"imaps,omitempty"`
	POP3       string `json:"pop3,omitempty"`
	POP3S      string `json:"pop3s,omitempty"`
	// Submissions is the implicit-TLS submission listener (RFC 8314).
	Submissions string `json:"submissions,omitempty"`
	Admin       string `json:"admin"`
	Gossip      string `json:"gossip,omitempty"`
	Channel     string `json:"channel,omitempty"`
	// ACMEHTTP is the HTTP-01 challenge listener (--acme-http).
	ACMEHTTP string `json:"acmeHttp,omitempty"`
}

// writeReady writes the Ready file atomically (a reader never sees half of
// it): a temporary file in the same directory, then a rename.
func writeReady(path string, n *node.Node) error {
	b, err := json.Marshal(Ready{Name: n.Name(), PID: os.Getpid(), SMTP: n.SMTPAddr(), Submission: n.SubmissionAddr(),
		IMAP: n.IMAPAddr(), IMAPS: n.IMAPSAddr(), POP3: n.POP3Addr(), POP3S: n.POP3SAddr(),
		Submissions: n.SubmissionsAddr(), Admin: n.AdminAddr(), Gossip: n.GossipAddr(), Channel: n.ChannelAddr(),
		ACMEHTTP: n.ACMEChallengeAddr()})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func banner(w io.Writer, n *node.Node) {
	fmt.Fprintf(w, "%s: node %q ready\n", versionString(), n.Name())
	fmt.Fprintf(w, "  SMTP   %s\n", n.SMTPAddr())
	if a := n.SubmissionAddr(); a != "" {
		fmt.Fprintf(w, "  submission %s\n", a)
	}
	if a := n.IMAPAddr(); a != "" {
		fmt.Fprintf(w, "  IMAP   %s (STARTTLS)\n", a)
	}
	if a := n.IMAPSAddr(); a != "" {
		fmt.Fprintf(w, "  IMAPS  %s\n", a)
	}
	if a := n.POP3Addr(); a != "" {
		fmt.Fprintf(w, "  POP3   %s\n", a)
	}
	if a := n.POP3SAddr(); a != "" {
		fmt.Fprintf(w, "  pop3s  %s\n", a)
	}
	fmt.Fprintf(w, "  admin  http://%s/api/v1/\n", n.AdminAddr())
	fmt.Fprintf(w, "  console http://%s/console/\n", n.AdminAddr())
	addr, pw := n.Demo()
	if addr == "" {
		fmt.Fprintf(w, "\nAdd an account:\n  bin/homing ctl --admin %s accounts add you@%s\n", n.AdminAddr(), n.Domains()[0])
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
	shown := pw // in the lines to copy
	if shown == "" {
		shown = "PASSWORD"
	}
	if a := n.IMAPAddr(); a != "" {
		h, p := splitHostPort(a)
		fmt.Fprintf(w, "Read it with an IMAP client (IMAP %s:%s; a password over STARTTLS, or plain on loopback):\n", h, p)
		fmt.Fprintf(w, "  curl -s --user '%s:%s' 'imap://%s:%s/INBOX;UID=1'     # the first message\n", addr, shown, h, p)
		fmt.Fprintf(w, "  neomutt -f 'imap://%s@%s:%s/INBOX'\n", strings.ReplaceAll(addr, "@", "%40"), h, p)
		fmt.Fprintf(w, "  mbsync: IMAPAccount demo / Host %s / Port %s / User %s / TLSType None (loopback only)\n", h, p, addr)
	}
	if a := n.POP3Addr(); a != "" {
		h, p := splitHostPort(a)
		fmt.Fprintf(w, "Read it with a POP3 client (POP3 %s:%s; getmail6, fetchmail, Python's poplib):\n", h, p)
		fmt.Fprintf(w, "  curl -s --user '%s:%s' 'pop3://%s:%s/'      # LIST; pop3://%s:%s/1 is RETR 1\n", addr, shown, h, p, h, p)
	}
}

func splitHostPort(hp string) (string, string) {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 {
		return hp, ""
	}
	return strings.Trim(hp[:i], "[]"), hp[i+1:]
}
