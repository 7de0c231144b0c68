package pop3

import (
	"crypto/tls"
	"time"

	"github.com/homing-mail/homing/guard"
)

// Config configures a Server. Zero values take the defaults written on
// the fields (WithDefaults).
type Config struct {
	// Hostname is the server's name in the greeting. Default "localhost".
	Hostname string
	// TLSConfig enables STLS (RFC 2595 §4) on Serve's connections and is
	// required by ServeTLS (implicit TLS, RFC 8314). nil: no TLS, and then
	// passwords are taken only from loopback clients.
	TLSConfig *tls.Config
	// Implementation is the IMPLEMENTATION capability's text (RFC 2449
	// §6.9). Default "Homing".
	Implementation string

	// MaxLineLength bounds a command line, CRLF included (RFC 2449 §4
	// says 255 octets; AUTH responses may be longer). A longer line is
	// answered -ERR and skipped. Default 1024.
	MaxLineLength int
	// MaxSkipLength bounds how much of an over-long line is skipped; a
	// line longer than that closes the connection. Default 64 KiB.
	MaxSkipLength int

	// LoginTimeout is how long the server waits for a command before the
	// client has logged in; IdleTimeout after (RFC 1939 §3: an autologout
	// timer "MUST be of at least 10 minutes' duration"; a smaller value is
	// raised to 10 minutes unless AllowShortIdle is set, for tests).
	// WriteTimeout bounds each write to the client (a client that stops
	// reading a RETR). Defaults 1 min, 10 min, 5 min.
	LoginTimeout   time.Duration
	IdleTimeout    time.Duration
	WriteTimeout   time.Duration
	AllowShortIdle bool

	// MaxCommandsBeforeAuth and MaxErrorsBeforeAuth bound what a client
	// may do before it has logged in: the next command past the first
	// limit, and the error that reaches the second, close the connection
	// with -ERR. Defaults 30 and 10.
	MaxCommandsBeforeAuth int
	MaxErrorsBeforeAuth   int
	// MaxAuthFailures is the number of failed logins after which the
	// connection is closed. Default 3.
	MaxAuthFailures int

	// MaxConnections and MaxConnectionsPerIP bound the open connections
	// of the server, in total and per client IP, when Limiter is nil.
	// Defaults 1000 and 20.
	MaxConnections      int
	MaxConnectionsPerIP int
	// Limiter, when set, decides instead which connections are served
	// (the node can share one between listeners).
	Limiter Limiter

	// Guard checks logins and holds their budgets: the node shares one
	// with SMTP AUTH, so they spend from the same budgets. nil: the server
	// makes one from Auth.
	Guard *guard.Guard
	Auth  guard.Config
}

// minIdle is RFC 1939 §3's lower bound of the autologout timer.
const minIdle = 10 * time.Minute

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.Implementation == "" {
		c.Implementation = "Homing"
	}
	if c.MaxLineLength <= 0 {
		c.MaxLineLength = 1024
	}
	c.MaxLineLength = max(c.MaxLineLength, 64)
	if c.MaxSkipLength <= 0 {
		c.MaxSkipLength = 64 << 10
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = time.Minute
	}
	if c.IdleTimeout <= 0 || (c.IdleTimeout < minIdle && !c.AllowShortIdle) {
		c.IdleTimeout = minIdle
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Minute
	}
	if c.MaxCommandsBeforeAuth <= 0 {
		c.MaxCommandsBeforeAuth = 30
	}
	if c.MaxErrorsBeforeAuth <= 0 {
		c.MaxErrorsBeforeAuth = 10
	}
	if c.MaxAuthFailures <= 0 {
		c.MaxAuthFailures = 3
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 1000
	}
	if c.MaxConnectionsPerIP <= 0 {
		c.MaxConnectionsPerIP = 20
	}
	if c.Guard != nil {
		c.Auth = c.Guard.Config()
	}
	c.Auth = c.Auth.WithDefaults()
	return c
}
