package guard

import (
	"runtime"
	"time"
)

// Config sets the password-login limits of a Guard. Zero values take the
// defaults written on the fields (WithDefaults).
type Config struct {
	// MaxChecks is the number of password checks that may run at once
	// (each argon2id check holds about 19 MiB and a core for tens of
	// milliseconds). Default: the number of usable cores
	// (runtime.GOMAXPROCS).
	MaxChecks int
	// CheckWait is how long an attempt waits for a free check slot
	// before it is refused as busy. Default 2 s.
	CheckWait time.Duration

	// FailureWindow is how long a failed attempt counts. Default 15 min.
	FailureWindow time.Duration
	// MaxFailuresPerNetwork is the number of failures (any account)
	// from one client network within the window after which attempts
	// from that network are refused unchecked. Default 20.
	MaxFailuresPerNetwork int
	// MaxFailuresPerAccount is the same for one account from one client
	// network: the owner logging in from another network is not
	// affected. Default 5.
	MaxFailuresPerAccount int
	// FailureDelay is the wait before a failure is answered; it doubles
	// with each further recent failure of the network or the account
	// from it, up to MaxFailureDelay. Defaults 1 s and 15 s (Dovecot's
	// auth_failure_delay and its penalty cap).
	FailureDelay    time.Duration
	MaxFailureDelay time.Duration

	// IPv4Prefix and IPv6Prefix group client addresses into networks
	// (see Networks). Defaults 24 and 64.
	IPv4Prefix int
	IPv6Prefix int

	// MaxKeys bounds the networks and the account-network pairs tracked
	// (each table); the least recently used is forgotten first. Default
	// 16384.
	MaxKeys int

	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// WithDefaults returns c with every zero (or out of range) field set to its
// default.
func (c Config) WithDefaults() Config {
	if c.MaxChecks <= 0 {
		c.MaxChecks = runtime.GOMAXPROCS(0)
	}
	if c.CheckWait <= 0 {
		c.CheckWait = 2 * time.Second
	}
	if c.FailureWindow <= 0 {
		c.FailureWindow = 15 * time.Minute
	}
	if c.MaxFailuresPerNetwork <= 0 {
		c.MaxFailuresPerNetwork = 20
	}
	if c.MaxFailuresPerAccount <= 0 {
		c.MaxFailuresPerAccount = 5
	}
	if c.FailureDelay <= 0 {
		c.FailureDelay = time.Second
	}
	if c.MaxFailureDelay <= 0 {
		c.MaxFailureDelay = 15 * time.Second
	}
	c.MaxFailureDelay = max(c.MaxFailureDelay, c.FailureDelay)
	if c.IPv4Prefix <= 0 || c.IPv4Prefix > 32 {
		c.IPv4Prefix = DefaultIPv4Prefix
	}
	if c.IPv6Prefix <= 0 || c.IPv6Prefix > 128 {
		c.IPv6Prefix = DefaultIPv6Prefix
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 16384
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Networks returns the grouping of client addresses c configures.
func (c Config) Networks() Networks { return Networks{IPv4: c.IPv4Prefix, IPv6: c.IPv6Prefix} }
