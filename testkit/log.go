package testkit

import (
	"log/slog"
	"testing"

	"github.com/homing-mail/homing/testkit/tlog"
)

// Logger is tlog.New: a logger that writes every record to t.Log,
// prefixed with name, until the test ends (later records are dropped,
// since t.Log panics after the test).
func Logger(t testing.TB, name string) *slog.Logger { return tlog.New(t, name) }
