package smtp

import (
	"crypto/tls"
	"time"

	"github.com/homing-mail/homing/mail"
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
	// MaxConnectionsPerIP is the same limit per client IP. Default 50.
	MaxConnectionsPerIP int

	// MaxAuthFailures is the number of failed AUTH attempts after which
	// the connection is closed with 421 4.7.0. Default 3.
	MaxAuthFailures int
	// AuthFailureDelay is how long a failed AUTH waits before its 535
	// reply, to slow down password guessing. Default 1 s; tests set it
	// short.
	AuthFailureDelay time.Duration
	// MaxAuthFailuresPerIP and MaxAuthFailuresPerAccount bound failed
	// AUTH attempts across connections within AuthFailureWindow; beyond
	// them AUTH answers 454 4.7.0 without checking (defaults 10, 5, 15 min).
	MaxAuthFailuresPerIP      int
	MaxAuthFailuresPerAccount int
	AuthFailureWindow         time.Duration

	// Source is stamped on accepted envelopes. Default mail.SourceSMTP,
	// or mail.SourceSubmission when Submission is set.
	Source mail.Source

	// Now is the clock for Received headers and envelopes; nil means
	// time.Now. Tests set it.
	Now func() time.Time

	// Cluster, when set, offers the cluster submission protocol: members
	// authenticate with X-HOMING-CLUSTER (see cluster.go), may relay, and
	// may hand over messages with their whole envelope.
	Cluster *ClusterAuth
	// AcceptTransfers reports whether this node takes transferred
	// messages now (its queue mode is Locally for Others). nil: never.
	AcceptTransfers func() bool
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
	if c.MaxAuthFailures <= 0 {
		c.MaxAuthFailures = 3
	}
	if c.MaxAuthFailuresPerIP <= 0 {
		c.MaxAuthFailuresPerIP = 10
	}
	if c.MaxAuthFailuresPerAccount <= 0 {
		c.MaxAuthFailuresPerAccount = 5
	}
	if c.AuthFailureWindow <= 0 {
		c.AuthFailureWindow = 15 * time.Minute
	}
	if c.AuthFailureDelay <= 0 {
		c.AuthFailureDelay = time.Second
	}
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
