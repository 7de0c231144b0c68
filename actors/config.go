package actors

import "time"

// Config is the behaviour of one node's actors. Zero fields take the
// defaults below (Postfix's, where Postfix has one).
type Config struct {
	// Partitions is the number of account partitions (fixed for the
	// life of the account store).
	Partitions int
	// Hostname names this MTA in DSNs (Reporting-MTA) and relay EHLO.
	Hostname string
	// LocalDomains are the domains whose addresses are accounts here.
	LocalDomains []string
	// AuthServID is the cluster's authserv-id (RFC 8601): account rules
	// read the results of the Authentication-Results field with it, and
	// a message it marks as quarantined (DMARC) is filed in JunkFolder.
	AuthServID string
	// NodeName is this node's member name, which the transfer protocol
	// gives the members it asks. Default Hostname.
	NodeName string

	// AccountIdle passivates an account actor after this long without a
	// message. Default 2 minutes.
	AccountIdle time.Duration
	// MaxAccountActors bounds the account actors a node keeps active
	// (each partition keeps its share, MaxAccountActors/Partitions, but
	// at least 16): beyond it a partition asks its least recently used
	// actor to passivate (actorlimit.go). Default 1024; negative: no
	// bound.
	MaxAccountActors int
	// PartitionIdle closes a partition's data after this long without
	// a request and with no account actor active (idle.go); the next
	// request opens it again. Default 2 minutes; negative: never.
	PartitionIdle time.Duration
	// RelayIdle stops a per-domain relay actor after this long without
	// work. Default 1 minute.
	RelayIdle time.Duration
	// RequestTimeout bounds one request to another actor (a Local
	// Delivery, a lookup) and one storage write. Default 10 s.
	RequestTimeout time.Duration

	// MinBackoff is the first retry delay (Postfix minimal_backoff_time,
	// 300 s); each further failure doubles it up to MaxBackoff
	// (maximal_backoff_time, 4000 s).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MaxLifetime is how long a message may stay in the queue before its
	// open recipients fail (maximal_queue_lifetime, 5 days).
	MaxLifetime time.Duration
	// DelayWarning sends one "delayed" DSN once a message has waited this
	// long (delay_warning_time). 0 = never (Postfix's default).
	DelayWarning time.Duration
	// OverQuotaTimeout: a full mailbox is a temporary failure for this
	// long, then a permanent one. Default 24 hours.
	OverQuotaTimeout time.Duration
	// RelayConcurrency is the most simultaneous SMTP transactions to one
	// destination domain (default_destination_concurrency_limit, 20).
	RelayConcurrency int
	// RelayTimeout bounds one whole relay transaction. Default 15 min.
	RelayTimeout time.Duration
	// LookupTimeout bounds an RCPT-time lookup at the account's owner.
	// Default 5 s.
	LookupTimeout time.Duration
	// LookupCacheTTL: a positive RCPT-time answer is reused this long
	// without asking the owner again. Default 30 s; negative = always ask.
	LookupCacheTTL time.Duration
	// LocalRetry caps the retry delay of a local recipient whose backend
	// was unreachable or had no owner (4.4.x). Default 15 s.
	LocalRetry time.Duration
	// MaxFetches is the most bodies this node pulls from members (or
	// copies across filesystems) at once for its accounts, and the most
	// pieces its body server reads at once; each pull holds at most
	// bodyWindow chunks of 256 KiB (bodyref.go). Default 4.
	MaxFetches int
	// MaxActive is the most messages attempted at once; others wait in
	// order (Postfix qmgr_message_active_limit). Default 2000.
	MaxActive int
	// TransferConfirmTimeout: a message generated here whose transfer
	// to a member ended without a clear answer (queue mode Remotely) is
	// processed here once that member has not answered for this long
	// since the hand-over (transfer.go). Default 5 minutes.
	TransferConfirmTimeout time.Duration
}

// WithDefaults returns c with every zero field set to its default (the
// defaults written on the fields; flags show the same values).
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Partitions <= 0 {
		c.Partitions = 1
	}
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	def(&c.AccountIdle, 2*time.Minute)
	if c.MaxAccountActors == 0 {
		c.MaxAccountActors = DefaultMaxAccountActors
	}
	def(&c.RelayIdle, time.Minute)
	if c.PartitionIdle == 0 {
		c.PartitionIdle = 2 * time.Minute
	}
	def(&c.RequestTimeout, 10*time.Second)
	def(&c.MinBackoff, 300*time.Second)
	def(&c.MaxBackoff, 4000*time.Second)
	def(&c.MaxLifetime, 5*24*time.Hour)
	def(&c.OverQuotaTimeout, 24*time.Hour)
	def(&c.RelayTimeout, 15*time.Minute)
	def(&c.LocalRetry, 15*time.Second)
	def(&c.LookupTimeout, 5*time.Second)
	def(&c.TransferConfirmTimeout, 5*time.Minute)
	if c.NodeName == "" {
		c.NodeName = c.Hostname
	}
	if c.LookupCacheTTL == 0 {
		c.LookupCacheTTL = 30 * time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.MaxFetches <= 0 {
		c.MaxFetches = 4
	}
	if c.MaxActive <= 0 {
		c.MaxActive = 2000
	}
	if c.RelayConcurrency <= 0 {
		c.RelayConcurrency = 20
	}
	return c
}

// backoff is the delay before attempt n+1 after n failed attempts: MinBackoff
// doubled per attempt, capped at MaxBackoff (RFC 5321 §4.5.4.1 asks for at
// least 30 minutes between retries to one destination in general; Postfix's
// schedule starts lower for the first retries, and so does Homing's).
func (c *Config) backoff(attempts int) time.Duration {
	d := c.MinBackoff
	for i := 1; i < attempts && d < c.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, c.MaxBackoff)
}
