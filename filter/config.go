package filter

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// Defaults and limits of the protocol engine.
const (
	// DefaultTimeout is Config.Timeout when it is zero.
	DefaultTimeout = 30 * time.Second
	// DefaultRestart is Config.Restart when it is zero.
	DefaultRestart = time.Second
	// MaxRestart caps the doubling restart back-off.
	MaxRestart = 30 * time.Second
	// DefaultGrace is Config.Grace when it is zero.
	DefaultGrace = 5 * time.Second
	// MaxAttempts is how often one request is sent to the program (the
	// first time and after restarts) before it ends with ErrGaveUp.
	MaxAttempts = 3
	// InterfaceVersion is the version Homing announces with INTF.
	InterfaceVersion = 3
	// MaxLineBytes is the longest line accepted from the program, without
	// its line end.
	MaxLineBytes = 4096
)

// Config describes one external filter program. The zero values of the
// durations select the defaults above.
type Config struct {
	// Name identifies the filter in metrics labels and logs; empty means
	// the base name of Command[0].
	Name string
	// Command is the program and its arguments, started with os/exec (no
	// shell), in Homing's working directory, with Homing's environment
	// minus the variables whose names start with HOMING_ (the cluster
	// secret and admin tokens).
	Command []string
	// Timeout bounds each request, from the Check call to the answer,
	// including any wait for a restart, and the INTF handshake.
	Timeout time.Duration
	// Restart is the back-off before a dead program is started again; it
	// doubles after each restart up to MaxRestart and falls back once a
	// process has answered a request.
	Restart time.Duration
	// Grace is how long Close waits for the program to exit after its
	// standard input is closed, before killing it. (An addition to the
	// interface in issue #4.)
	Grace time.Duration
	// Logger receives the program's "*" lines (Info), its standard error
	// (Warn), restarts and protocol errors; nil discards.
	Logger *slog.Logger
}

// withDefaults returns c completed with defaults, or an error matching
// ErrInvalidConfig.
func (c Config) withDefaults() (Config, error) {
	if len(c.Command) == 0 || c.Command[0] == "" {
		return c, fmt.Errorf("%w: no command", ErrInvalidConfig)
	}
	if c.Name == "" {
		c.Name = filepath.Base(c.Command[0])
	}
	if c.Timeout < 0 || c.Restart < 0 || c.Grace < 0 {
		return c, fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Restart == 0 {
		c.Restart = DefaultRestart
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Logger = c.Logger.With("filter", c.Name)
	return c, nil
}
