package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/pop3"
	"github.com/homing-mail/homing/smtp"
	"github.com/homing-mail/homing/storage"
)

// Config is every setting of a node, nested per component. cmd/homing
// fills it from flags and the config file; tests fill it directly. Zero
// values take defaults, and each default is written once, by the component
// that owns it: WithDefaults applies them (smtp.Config.WithDefaults,
// actors.Config.WithDefaults and the sub-configs below), and the flags of
// `homing serve` show the same values.
type Config struct {
	Name     string      // node name, unique in the cluster; default "homing"
	Roles    []mail.Role // default both
	Hostname string      // SMTP greeting, Received, DSN, relay EHLO; default Name
	Domains  []string    // local domains of a new node; default example.test (then changed at run time: package domains)
	// DomainsGiven says Domains came from the operator (--domains), so
	// that a start with a saved set that differs warns.
	DomainsGiven bool
	// DemoAccount creates demo@<first domain> with a random password
	// (kept in DataDir/demo-password) when it does not exist.
	DemoAccount bool
	Logger      *slog.Logger
	// LogFields writes the delivery log's fields (to, relay, status...)
	// as attributes of its records too, not only in the line: for JSON
	// logs (--log-format json).
	LogFields bool

	Listen  Listen
	Admin   Admin
	Store   Store
	Cluster Cluster
	Routing Routing
	// Trust is the node's DNS, DKIM signing, inbound checks and TLS
	// defaults (issue #11; config_trust.go).
	Trust Trust
	// SMTP holds the limits and timeouts of both SMTP listeners. The node
	// sets Hostname, Submission, TLSConfig, Source and the cluster fields
	// itself.
	SMTP smtp.Config
	// POP3 holds the limits and timeouts of the POP3 listeners (Listen.POP3,
	// Listen.POP3S). The node sets Hostname, TLSConfig and Guard itself.
	POP3 pop3.Config
	// POP3LockLease is how long the maildrop lock of a POP3 session holds
	// at the account's owner without being renewed (the session renews it
	// every third of it): a lock whose session's node died is free again
	// after at most this. Default 30 s.
	POP3LockLease time.Duration
	// TestKillAfterTransferStored is for tests only ("" otherwise): when
	// the file it names exists as a transfer from a member has just been
	// stored durably here, before its 250 is sent, the node removes the
	// file and kills itself (SIGKILL). It makes the crash window of an
	// unclear transfer reply deterministic for a real-process test
	// (node/transfer_test.go).
	TestKillAfterTransferStored string
	// Queue holds the retry schedule, lifetimes, concurrency and actor
	// timers. The node sets Partitions (Store.Partitions), Hostname,
	// LocalDomains (Domains) and NodeName (Name) itself.
	Queue actors.Config
}

// Listen is where the node takes SMTP and serves mailboxes.
type Listen struct {
	SMTP       string // public SMTP listener; default 127.0.0.1:2525
	Submission string // submission listener (AUTH required); "" = off
	// Submissions is the submission listener with implicit TLS (RFC
	// 8314, port 465); "" = off.
	Submissions string
	TLSCert     string // PEM certificate chain; with TLSKey enables STARTTLS
	TLSKey      string
	// IMAP is the IMAP listener (STARTTLS), IMAPS the implicit-TLS one
	// (RFC 8314); "" = off, except that a node with no SMTP address set
	// either (the no-flags single node) serves IMAP on 127.0.0.1:1143.
	// "off" turns that off too.
	IMAP  string
	IMAPS string
	// POP3 (STLS) and POP3S (implicit TLS) are the POP3 listeners; "" =
	// off (`homing serve` defaults POP3 to DefaultPOP3).
	POP3  string
	POP3S string
}

// Admin is the admin HTTP endpoint.
type Admin struct {
	Addr      string // default 127.0.0.1:8025
	Token     string // bearer token; required when Addr is not loopback
	ReadToken string // read-only bearer token
	// Pprof serves Go's profiler under /debug/pprof/ (behind the token
	// and Host checks of the API). Off by default: the profiles show the
	// process's internals, and /debug/pprof/cmdline its command line.
	Pprof bool
	// MinPasswordLength is the password policy's shortest password for
	// accounts created or changed through the API; default
	// control.DefaultMinPasswordLength.
	MinPasswordLength int
}

// SyncMode is how writes are made durable.
type SyncMode string

const (
	// SyncFS: one syncfs(2) round per group of commits across every DB
	// of a filesystem (storage.Syncer); the default on Linux.
	SyncFS SyncMode = "syncfs"
	// SyncFsync: badger's sync per transaction, merged per DB; for
	// network filesystems.
	SyncFsync SyncMode = "fsync"
)

// DefaultSyncGap is Store.SyncGap's default: the longest a sync round is
// held (storage.Syncer: for the writes under way, and, when no client
// waits for it, for more writes to share it), about a round under load on
// the 2-core test machine (1.4-1.6 ms). Measured there against no holding
// (homing-load --n 30000 --c 20, 3 interleaved rounds, medians): the
// cluster (homing-load --cluster) 2,296 -> 2,699 msg/s (+18%; at 500 µs
// its backends took 3,800 rounds for 15,000 deliveries each, against
// 6,150 without holding), one node 3,408 -> 3,584 (+5%), one session
// (--c 1) 763 -> 963 (+26%; DATA->250 p50 0.92 -> 0.73 ms: its 250 no
// longer shares a round with the previous message's delivery, which now
// waits for the next 250's round). 1 ms against 500 µs: the cluster +2%,
// one node +3%, one session 949 against 867; 2 ms was no better.
const DefaultSyncGap = time.Millisecond

// Store is where the node keeps its data.
type Store struct {
	DataDir      string   // default ./data
	AccountStore string   // root of the account partitions; default DataDir/accounts
	Partitions   int      // default 16 (fixed when the store is created)
	Sync         SyncMode // default SyncFS
	// SyncGap is the longest a syncfs round is held so that more writes
	// share it (storage.Syncer.SetGap). 0 means DefaultSyncGap; negative
	// turns holding off. Only with SyncFS.
	SyncGap time.Duration
	// JournalRetention is how long the journal (DataDir/journal: the
	// steps of every message through this node, and what finds them)
	// keeps a record; default 7 days.
	JournalRetention time.Duration
	// MinFreeSpace is the free space (bytes, on each store's filesystem)
	// below which new mail is refused with 452 4.3.1 and Local Delivery
	// defers (storage.Space; Postfix's queue_minfree). 0 means
	// DefaultMinFreeSpace of the SMTP size limit; negative means only
	// what the stores need for their own writes (never below that).
	MinFreeSpace int64
	// MapCache bounds the resident pages of the stores' mapped files
	// (storage.MapTrimmer: when the node's RssFile has grown by more than
	// it since the start, their pages are paged out). 0 means
	// storage.DefaultMapCache; negative: no bound (--map-cache off).
	MapCache int64
}

// DefaultMinFreeSpace is --min-free-space for a message size limit: two
// messages of the largest size (Postfix wants 1.5 of them free: two leave
// room for a second session streaming when the limit is crossed; the
// sessions past it are stopped by the stores' floor) and 64 MiB for what
// the stores write themselves and their reserve file (a default node's is
// 38 MiB). 128 MiB with the default 32 MiB limit.
func DefaultMinFreeSpace(maxMessageBytes int64) int64 {
	return 2*max(maxMessageBytes, 0) + 64<<20
}

// Cluster is the node's membership. A node is part of a cluster when
// Gossip or Join is set; otherwise it is a single node.
type Cluster struct {
	Gossip string   // gossip (memberlist) listen host:port; default 127.0.0.1:7946 in a cluster
	Addr   string   // cluster channel (protoactor remote) listen host:port; default 127.0.0.1:7947 in a cluster
	Join   []string // seeds host:port
	Secret string   // cluster secret: gossip encryption and channel mTLS keys
	// Insecure allows a multi-node cluster without a secret.
	Insecure bool
	Name     string // cluster name; default "homing"
	// StaticPartitions makes this backend own exactly these partitions
	// ("0-7,12"; static cluster). Empty: dynamic (rendezvous over live
	// backends sharing Store.AccountStore).
	StaticPartitions string
	// GossipFast shrinks gossip timers (a crash is detected in well
	// under a second); for tests and `homing dev`.
	GossipFast bool
	// WrapGossip, if set, wraps the gossip transport (testkit uses a
	// cluster.Switch to partition and heal nodes in one process).
	WrapGossip func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

// Routing is where mail goes and what runs on it on the way.
type Routing struct {
	// Mode is the queue processing mode (design.md, mail flow 6); default
	// mail.ModeLocally. The administrator changes it at run time.
	Mode mail.QueueMode
	// Routes are static relay routes, domain -> host:port ("*" smarthost).
	Routes map[string]string
	// RouteTLS is the TLS level of a route, by its domain (--route
	// DOMAIN=HOST:PORT,tls=LEVEL): may (opportunistic, the default),
	// encrypt (TLS or nothing, the certificate not checked) or require
	// (TLS or nothing, the certificate verified for HOST; the default of
	// a route with credentials).
	RouteTLS map[string]string
	// RouteCredentials is a file of "KEY USER PASSWORD" lines (KEY a
	// route's DOMAIN or *, or its HOST or HOST:PORT), mode 0600 or
	// stricter, read again on SIGHUP (--route-credentials): the route
	// authenticates with AUTH PLAIN, over TLS only.
	RouteCredentials string
	// TestMXPort is for tests only (0 otherwise): the port of MX hosts
	// instead of 25, so that a test's MX hosts can listen on loopback
	// (--test-mx-port).
	TestMXPort int
	// ForwardTo sends every non-local recipient over SMTP to these
	// "host:port"s instead of relaying it: "*" means the cluster's live
	// frontends (a backend without Internet access).
	ForwardTo []string
	// Filters are the external filters (content plugins) rules may name:
	// name -> program and arguments (--filter NAME=COMMAND).
	Filters map[string][]string
	// Resolver is the DNS for relaying; nil = the node's resolver
	// (Trust.DNS). Tests of the relay may stub it.
	Resolver smtp.Resolver
}

// Defaults is the configuration of a node with every default applied: what
// `homing serve` with no flags runs.
func Defaults() Config { return Config{}.WithDefaults() }

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		c.Name = "homing"
	}
	if len(c.Roles) == 0 {
		c.Roles = []mail.Role{mail.RoleFrontend, mail.RoleBackend}
	}
	if c.Hostname == "" {
		c.Hostname = c.Name
	}
	if len(c.Domains) == 0 {
		c.Domains = []string{"example.test"}
	}
	c.Listen = c.Listen.withDefaults()
	c.Admin = c.Admin.withDefaults()
	c.Store = c.Store.withDefaults()
	c.Cluster = c.Cluster.withDefaults()
	if c.Routing.Mode == "" {
		c.Routing.Mode = mail.ModeLocally
	}
	c.Trust = c.Trust.withDefaults(c.Domains)
	c.Trust.ACME = c.Trust.ACME.withDefaults(c.Hostname)
	c.SMTP = c.SMTP.WithDefaults()
	c.SMTP.Hostname = c.Hostname
	if c.Store.MinFreeSpace == 0 {
		c.Store.MinFreeSpace = DefaultMinFreeSpace(c.SMTP.MaxMessageBytes)
	}
	c.POP3 = c.POP3.WithDefaults()
	c.POP3.Hostname = c.Hostname
	if c.POP3LockLease <= 0 {
		c.POP3LockLease = DefaultPOP3LockLease
	}
	c.Queue.Partitions, c.Queue.Hostname, c.Queue.LocalDomains = c.Store.Partitions, c.Hostname, c.Domains
	c.Queue.NodeName = c.Name
	c.Queue.AuthServID = c.Trust.AuthServID
	c.Queue = c.Queue.WithDefaults()
	return c
}

func (l Listen) withDefaults() Listen {
	if l.SMTP == "" {
		l.SMTP = "127.0.0.1:2525"
		if l.IMAP == "" {
			l.IMAP = "127.0.0.1:1143"
		}
	}
	if l.IMAP == "off" {
		l.IMAP = ""
	}
	return l
}

func (a Admin) withDefaults() Admin {
	if a.Addr == "" {
		a.Addr = "127.0.0.1:8025"
	}
	return a
}

func (s Store) withDefaults() Store {
	if s.DataDir == "" {
		s.DataDir = "data"
	}
	if s.AccountStore == "" {
		s.AccountStore = filepath.Join(s.DataDir, "accounts")
	}
	if s.Partitions == 0 {
		s.Partitions = 16
	}
	if s.Sync == "" {
		s.Sync = SyncFS
	}
	if s.SyncGap == 0 {
		s.SyncGap = DefaultSyncGap
	}
	if s.JournalRetention == 0 {
		s.JournalRetention = storage.DefaultJournalRetention
	}
	return s
}

func (c Cluster) withDefaults() Cluster {
	if c.Name == "" {
		c.Name = "homing"
	}
	if c.Enabled() && c.Gossip == "" {
		c.Gossip = "127.0.0.1:7946"
	}
	if c.Enabled() && c.Addr == "" {
		c.Addr = "127.0.0.1:7947"
	}
	return c
}

// Enabled reports whether the node joins a cluster.
func (c Cluster) Enabled() bool { return c.Gossip != "" || len(c.Join) > 0 }

// Validate reports the first setting that cannot work, in words for the
// operator (naming the flag).
func (c Config) Validate() error {
	for _, r := range c.Roles {
		if _, err := mail.ParseRole(string(r)); err != nil {
			return fmt.Errorf("--roles: unknown role %q (want frontend, backend or both)", r)
		}
	}
	if _, err := mail.ParseQueueMode(string(c.Routing.Mode)); err != nil {
		return fmt.Errorf("--queue-mode: %q is not one of locally, locally-for-others, remotely", c.Routing.Mode)
	}
	if c.Store.Sync != SyncFS && c.Store.Sync != SyncFsync {
		return fmt.Errorf("--sync: %q is not syncfs or fsync", c.Store.Sync)
	}
	if c.Store.JournalRetention < time.Minute {
		return fmt.Errorf("--journal-retention: %v is shorter than a minute", c.Store.JournalRetention)
	}
	if c.Store.Partitions < 1 || c.Store.Partitions > 4096 {
		return fmt.Errorf("--partitions: %d is not between 1 and 4096", c.Store.Partitions)
	}
	for _, d := range c.Domains {
		if d == "" || strings.ContainsAny(d, " @,") {
			return fmt.Errorf("--domains: %q is not a domain", d)
		}
	}
	for _, f := range c.Routing.ForwardTo {
		if f == "*" {
			if !c.Cluster.Enabled() {
				return errors.New("--forward-to '*' needs a cluster (the frontends are found through membership)")
			}
			continue
		}
		if _, _, err := net.SplitHostPort(f); err != nil {
			return fmt.Errorf("--forward-to %s: want HOST:PORT or *", f)
		}
	}
	for d, hp := range c.Routing.Routes {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return fmt.Errorf("--route %s=%s: want HOST:PORT", d, hp)
		}
	}
	for d, lvl := range c.Routing.RouteTLS {
		if _, ok := c.Routing.Routes[d]; !ok {
			return fmt.Errorf("--route %s: tls=%s for a domain without a route", d, lvl)
		}
		if _, err := smtp.ParseRouteTLS(lvl); err != nil {
			return fmt.Errorf("--route %s: %v", d, err)
		}
	}
	if c.Routing.TestMXPort < 0 || c.Routing.TestMXPort > 65535 {
		return fmt.Errorf("--test-mx-port %d: not a port", c.Routing.TestMXPort)
	}
	for _, l := range []struct{ flag, addr string }{
		{"--smtp", c.Listen.SMTP}, {"--submission", c.Listen.Submission}, {"--submissions", c.Listen.Submissions}, {"--imap", c.Listen.IMAP}, {"--imaps", c.Listen.IMAPS}, {"--admin", c.Admin.Addr},
		{"--gossip", c.Cluster.Gossip}, {"--cluster-addr", c.Cluster.Addr},
		{"--pop3", c.Listen.POP3}, {"--pop3s", c.Listen.POP3S},
	} {
		if l.addr == "" {
			continue
		}
		if err := checkListenAddr(l.addr); err != nil {
			return fmt.Errorf("%s %s: %v", l.flag, l.addr, err)
		}
	}
	if c.Cluster.Enabled() && c.Cluster.Secret != "" && len(c.Cluster.Secret) < cluster.MinSecretLen {
		return fmt.Errorf("the cluster secret is shorter than %d bytes (make one with: openssl rand -hex 32)", cluster.MinSecretLen)
	}
	if c.Cluster.Enabled() && c.Cluster.Secret == "" && !c.Cluster.Insecure {
		return errors.New("--gossip/--join without --secret: a cluster needs a shared secret (or --insecure, for a trusted test network only)")
	}
	if c.Cluster.StaticPartitions != "" && !c.Cluster.Enabled() {
		return errors.New("--static-partitions needs a cluster (--gossip/--join)")
	}
	if (c.Listen.TLSCert == "") != (c.Listen.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if err := c.Trust.validate(); err != nil {
		return err
	}
	if err := c.Trust.ACME.validate(c.Listen); err != nil {
		return err
	}
	if !isLoopback(c.Admin.Addr) && c.Admin.Token == "" {
		return errors.New("--admin is not on loopback: set --admin-token (the admin API must not be open to the network)")
	}
	return nil
}

// checkListenAddr says what is wrong with a listener address: it must be
// HOST:PORT (an empty host means every interface) with a port of 0 to
// 65535.
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// hasRole reports whether the node has role r.
func (c Config) hasRole(r mail.Role) bool { return mail.HasRole(c.Roles, r) }

// isLoopback reports whether addr (host:port) listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
