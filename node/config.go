package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/homing-mail/homing/smtp"
)

// Config is every setting of a node. cmd/homing fills it from flags and the
// config file; tests fill it directly. Zero values take the defaults that
// Defaults documents.
type Config struct {
	Name  string   // node name, unique in the cluster; default: hostname
	Roles []string // "frontend", "backend"; default both

	SMTPAddr       string // public SMTP listener; default 127.0.0.1:2525
	SubmissionAddr string // submission listener (AUTH required); "" = off
	TLSCert        string // PEM certificate chain; with TLSKey enables STARTTLS
	TLSKey         string
	AdminAddr      string // admin HTTP; default 127.0.0.1:8025; "" after Defaults never
	AdminToken     string // bearer token; required when AdminAddr is not loopback
	AdminReadToken string // read-only bearer token

	// Cluster membership and channel. A node is part of a cluster when
	// Gossip or Join is set; otherwise it is a single node.
	Gossip      string   // gossip (memberlist) listen host:port
	ClusterAddr string   // cluster channel (protoactor remote) listen host:port
	Join        []string // seeds host:port
	Secret      string   // cluster secret: gossip encryption and channel mTLS keys
	Insecure    bool     // allow a multi-node cluster without a secret
	ClusterName string   // default "homing"
	// StaticPartitions makes this backend own exactly these partitions
	// ("0-7,12"; static cluster). Empty: dynamic (rendezvous over live
	// backends sharing AccountStore).
	StaticPartitions string
	// GossipFast shrinks gossip timers (a crash is detected in well under a second); for
	// tests and `homing dev`.
	GossipFast bool
	// WrapGossip, if set, wraps the gossip transport (testkit uses a
	// cluster.Switch to partition and heal nodes in one process).
	WrapGossip func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport

	DataDir      string // default ./data
	AccountStore string // root of the account partitions; default DataDir/accounts
	Partitions   int    // default 16 (fixed when the store is created)
	Domains      []string
	Hostname     string            // SMTP greeting, Received, DSN; default Name
	Routes       map[string]string // static relay routes, domain -> host:port, "*" smarthost
	QueueMode    string            // locally | locally-for-others | remotely
	// Filters are the external filters (content plugins) rules may name:
	// name -> program and arguments (--filter NAME=COMMAND).
	Filters map[string][]string
	// ForwardTo sends every non-local recipient over SMTP to these
	// "host:port"s instead of relaying it: "*" means the cluster's live
	// frontends (a backend without Internet access).
	ForwardTo []string
	// SyncMode is how writes are made durable: "syncfs" (default on
	// Linux: one syncfs round per group of commits across every DB of a
	// filesystem, see storage.Syncer) or "fsync" (badger's sync per
	// transaction, merged per DB; for network filesystems).
	SyncMode string

	MaxMessageBytes     int64
	MaxRecipients       int
	MaxConnections      int
	MaxConnectionsPerIP int
	CommandTimeout      time.Duration
	DataTimeout         time.Duration

	MinBackoff       time.Duration
	MaxBackoff       time.Duration
	MaxLifetime      time.Duration
	DelayWarning     time.Duration
	OverQuotaTimeout time.Duration
	RelayConcurrency int
	AccountIdle      time.Duration
	LocalRetry       time.Duration // retry cap when a backend did not answer
	LookupCacheTTL   time.Duration // reuse a positive RCPT lookup this long

	// DemoAccount creates demo@<first domain> with a random password
	// (kept in DataDir/demo-password) when it does not exist.
	DemoAccount bool

	// Resolver is the DNS for relaying; nil = the system's. Tests stub it.
	Resolver smtp.Resolver
	Logger   *slog.Logger
}

// Queue processing modes (design.md, "The mail flow" item 6).
const (
	ModeLocally          = "locally"
	ModeLocallyForOthers = "locally-for-others"
	ModeRemotely         = "remotely"
)

// Defaults fills unset fields.
func (c Config) Defaults() Config {
	if c.Name == "" {
		c.Name = "homing"
	}
	if len(c.Roles) == 0 {
		c.Roles = []string{"frontend", "backend"}
	}
	if c.SMTPAddr == "" {
		c.SMTPAddr = "127.0.0.1:2525"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = "127.0.0.1:8025"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.AccountStore == "" {
		c.AccountStore = filepath.Join(c.DataDir, "accounts")
	}
	if c.Partitions == 0 {
		c.Partitions = 16
	}
	if len(c.Domains) == 0 {
		c.Domains = []string{"example.test"}
	}
	if c.Hostname == "" {
		c.Hostname = c.Name
	}
	if c.QueueMode == "" {
		c.QueueMode = ModeLocally
	}
	if c.ClusterName == "" {
		c.ClusterName = "homing"
	}
	if c.Clustered() && c.Gossip == "" {
		c.Gossip = "127.0.0.1:7946"
	}
	if c.Clustered() && c.ClusterAddr == "" {
		c.ClusterAddr = "127.0.0.1:7947"
	}
	if c.SyncMode == "" {
		c.SyncMode = "syncfs"
	}
	return c
}

// Validate reports the first setting that cannot work, in words for the
// operator.
func (c Config) Validate() error {
	for _, r := range c.Roles {
		if r != "frontend" && r != "backend" {
			return fmt.Errorf("--roles: unknown role %q (want frontend, backend or both)", r)
		}
	}
	switch c.QueueMode {
	case ModeLocally, ModeLocallyForOthers, ModeRemotely:
	default:
		return fmt.Errorf("--queue-mode: %q is not one of locally, locally-for-others, remotely", c.QueueMode)
	}
	if c.SyncMode != "syncfs" && c.SyncMode != "fsync" {
		return fmt.Errorf("--sync: %q is not syncfs or fsync", c.SyncMode)
	}
	if c.Partitions < 1 || c.Partitions > 4096 {
		return fmt.Errorf("--partitions: %d is not between 1 and 4096", c.Partitions)
	}
	for _, d := range c.Domains {
		if d == "" || strings.ContainsAny(d, " @,") {
			return fmt.Errorf("--domains: %q is not a domain", d)
		}
	}
	for _, f := range c.ForwardTo {
		if f == "*" {
			if !c.Clustered() {
				return errors.New("--forward-to '*' needs a cluster (the frontends are found through membership)")
			}
			continue
		}
		if _, _, err := net.SplitHostPort(f); err != nil {
			return fmt.Errorf("--forward-to %s: want HOST:PORT or *", f)
		}
	}
	for d, hp := range c.Routes {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return fmt.Errorf("--route %s=%s: want HOST:PORT", d, hp)
		}
	}
	if c.Clustered() && c.Secret == "" && !c.Insecure {
		return errors.New("--gossip/--join without --secret: a cluster needs a shared secret (or --insecure, for a trusted test network only)")
	}
	if c.StaticPartitions != "" && !c.Clustered() {
		return errors.New("--static-partitions needs a cluster (--gossip/--join)")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if !isLoopback(c.AdminAddr) && c.AdminToken == "" {
		return errors.New("--admin is not on loopback: set --admin-token (the admin API must not be open to the network)")
	}
	return nil
}

// Clustered reports whether the node joins a cluster.
func (c Config) Clustered() bool { return c.Gossip != "" || len(c.Join) > 0 }

func (c Config) hasRole(r string) bool {
	for _, x := range c.Roles {
		if x == r {
			return true
		}
	}
	return false
}

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
