package smtp

import (
	"crypto/tls"
	"time"

	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
)

// Config configures one SMTP listener (the public MX listener or the
// submission listener). Zero values take the documented defaults.
type Config struct {
	// Hostname is this server's name in the greeting and the Received
	// header. Default "localhost".
	Hostname string
	// Submission makes this the submission listener (RFC 6409): AUTH is
	// required before MAIL (530 5.7.0).
	Submission bool
	// TLSConfig enables STARTTLS (RFC 3207) when set. AUTH PLAIN and
	// LOGIN are offered only over TLS or on a loopback connection.
	TLSConfig *tls.Config

	// MaxMessageBytes is the largest message accepted, advertised as
	// SIZE (RFC 1870); larger ones get 552 5.3.4. Default 32 MiB.
	MaxMessageBytes int64
	// MaxRecipients is the number of distinct recipients per message;
	// beyond it RCPT gets 452 4.5.3 (RFC 5321 §4.5.3.1.8). Default 1000.
	MaxRecipients int
	// MaxLineLength bounds command lines. Default 2000 (go-smtp's).
	//
	// go-smtp applies a single limit to every line it reads, including
	// lines inside DATA and lines after STARTTLS, so the limit given to
	// go-smtp is max(MaxLineLength, MaxDataLineLength+1024): command
	// lines are in effect bounded by that larger value. A line over it
	// closes the connection with 500 5.4.0.
	MaxLineLength int
	// MaxDataLineLength bounds a line of the message (without CRLF);
	// a longer line gets 550 5.6.0. RFC 5322 §2.1.1 says 998, but real
	// mail breaks that. Default 64 KiB.
	MaxDataLineLength int

	// CommandTimeout is how long the server waits for a command
	// (RFC 5321 §4.5.3.2.7 recommends 5 minutes). Default 5 min.
	CommandTimeout time.Duration
	// DataTimeout bounds a whole DATA phase, from the 354 reply to the
	// final dot. A BDAT chunk is bounded by CommandTimeout. Default 10 min.
	DataTimeout time.Duration

	// MaxConnections is the number of open connections to this server;
	// the next one gets "421 4.7.0 Too many connections" and is closed.
	// Default 1000.
	MaxConnections int
	// MaxConnectionsPerIP is the same limit per client IP. Default 50
	// (Postfix's smtpd_client_connection_count_limit).
	MaxConnectionsPerIP int
	// MaxConnectionsPerNetwork is the same limit per client network
	// (Auth.IPv4Prefix and Auth.IPv6Prefix: /24 and /64), so that one
	// network cannot take the server by spreading over its addresses.
	// Default 100.
	MaxConnectionsPerNetwork int
	// ReservedConnections of the MaxConnections slots are kept for
	// networks that hold few connections (fewer than a tenth of
	// MaxConnectionsPerNetwork, at least 1): once only that many slots
	// are free, a network that already holds more is refused, so that a
	// handful of busy networks (slowloris from 20 networks) cannot take
	// every slot from everyone else. Default MaxConnections/10; negative:
	// no reserve.
	ReservedConnections int

	// StressPercent is the share of MaxConnections in use from which the
	// server is under stress: then the command timeout is
	// StressCommandTimeout (Postfix's smtpd_timeout=${stress?10}{300}),
	// also for the commands already waiting, so idle connections give
	// their slots back quickly. The DATA phase keeps DataTimeout. The
	// stress ends when the open connections are a tenth below the
	// threshold again. Defaults 75 and 10 s.
	StressPercent        int
	StressCommandTimeout time.Duration

	// SoftErrorLimit and HardErrorLimit bound the errors of a session
	// (replies 5xx and 4xx other than 451 to MAIL, RCPT and DATA: unknown
	// users, relaying denied, rate limits; not the server's own temporary
	// trouble): after SoftErrorLimit errors each further
	// error reply waits ErrorSleep, and the HardErrorLimit-th is
	// "421 4.7.0 Too many errors" and the connection is closed, which
	// makes harvesting a directory with RCPT slow and short (Postfix's
	// smtpd_soft_error_limit, smtpd_hard_error_limit,
	// smtpd_error_sleep_time). Cluster members are exempt. Defaults 10,
	// 20, 1 s.
	SoftErrorLimit int
	HardErrorLimit int
	ErrorSleep     time.Duration

	// MessageRatePerNetwork and MessageRatePerSender bound the messages a
	// client network, and an authenticated sender, may start per
	// MessageRateInterval (a token bucket: that many at once, then
	// evenly spread). Over the rate, RCPT is answered "450 4.7.1"
	// (RFC 5321 §4.2.2: "temporarily blocked for policy reasons"), so the
	// client keeps the message and tries later. Cluster members are
	// exempt. The network rate is off by default (0; as Postfix's
	// smtpd_client_message_rate_limit: one network of a large provider,
	// or a benchmark on loopback, legitimately sends thousands a minute;
	// 0 or negative: off); the sender rate defaults to 60 a minute
	// (negative: off).
	MessageRatePerNetwork int
	MessageRatePerSender  int
	MessageRateInterval   time.Duration

	// MaxAuthFailures is the number of failed AUTH attempts after which
	// the connection is closed with 421 4.7.0. Default 3.
	MaxAuthFailures int
	// Auth holds the limits of password logins across connections: the
	// gate of concurrent password checks, the failure budgets per client
	// network and per account from a network, the delay after a failure
	// (see guard.Config; its defaults apply), and the network sizes that
	// the connection and rate limits use too.
	Auth guard.Config
	// Guard is the guard the server checks logins with: the node shares
	// one between its listeners and POST /api/v1/submit, so they share
	// the gate and the budgets. nil: NewServer makes one from Auth.
	// When set, its configuration is used instead of Auth's.
	Guard *guard.Guard

	// Source is stamped on accepted envelopes. Default mail.SourceSMTP,
	// or mail.SourceSubmission when Submission is set.
	Source mail.Source

	// Now is the clock for Received headers and envelopes; nil means
	// time.Now. Tests set it.
	Now func() time.Time

	// slowData makes sessions read DATA through go-smtp's reader and
	// scan it separately, as before fastDataReader (tests compare the
	// two).
	slowData bool

	// Cluster, when set, offers the cluster submission protocol: members
	// authenticate with X-HOMING-CLUSTER (see cluster.go), may relay, and
	// may hand over messages with their whole envelope.
	Cluster *ClusterAuth
	// Checks, when set, checks every message from outside (no AUTH, not
	// a member) as DATA arrives (checks.go).
	Checks Checker
	// AcceptTransfers reports whether this node takes transferred
	// messages now (its queue mode is Locally for Others). nil: never.
	AcceptTransfers func() bool

	// MailLog is the delivery log: refusals at MAIL, RCPT and DATA and
	// logins go there (throttled where a client causes them at will);
	// nil writes none.
	MailLog *maillog.Log
}

// WithDefaults returns c with every zero field set to its default (the
// defaults written on the fields; flags show the same values).
func (c Config) WithDefaults() Config {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 32 << 20
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = 1000
	}
	if c.MaxLineLength <= 0 {
		c.MaxLineLength = 2000
	}
	if c.MaxDataLineLength <= 0 {
		c.MaxDataLineLength = 64 << 10
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 5 * time.Minute
	}
	if c.DataTimeout <= 0 {
		c.DataTimeout = 10 * time.Minute
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 1000
	}
	if c.MaxConnectionsPerIP <= 0 {
		c.MaxConnectionsPerIP = 50
	}
	if c.MaxConnectionsPerNetwork <= 0 {
		c.MaxConnectionsPerNetwork = 100
	}
	if c.ReservedConnections == 0 {
		c.ReservedConnections = c.MaxConnections / 10
	}
	if c.ReservedConnections >= c.MaxConnections {
		c.ReservedConnections = c.MaxConnections - 1
	}
	if c.StressPercent <= 0 || c.StressPercent > 100 {
		c.StressPercent = 75
	}
	if c.StressCommandTimeout <= 0 {
		c.StressCommandTimeout = 10 * time.Second
	}
	c.StressCommandTimeout = min(c.StressCommandTimeout, c.CommandTimeout)
	if c.SoftErrorLimit <= 0 {
		c.SoftErrorLimit = 10
	}
	if c.HardErrorLimit <= 0 {
		c.HardErrorLimit = 20
	}
	if c.ErrorSleep <= 0 {
		c.ErrorSleep = time.Second
	}
	if c.MessageRatePerSender == 0 {
		c.MessageRatePerSender = 60
	}
	if c.MessageRateInterval <= 0 {
		c.MessageRateInterval = time.Minute
	}
	if c.MaxAuthFailures <= 0 {
		c.MaxAuthFailures = 3
	}
	if c.Guard != nil {
		c.Auth = c.Guard.Config()
	}
	c.Auth = c.Auth.WithDefaults()
	if c.Source == "" {
		c.Source = mail.SourceSMTP
		if c.Submission {
			c.Source = mail.SourceSubmission
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// goSMTPLineLimit is the line limit handed to go-smtp (see MaxLineLength).
func (c Config) goSMTPLineLimit() int {
	return max(c.MaxLineLength, c.MaxDataLineLength+1024)
}
