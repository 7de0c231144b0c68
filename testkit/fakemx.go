package testkit

import (
	"testing"

	"github.com/homing-mail/homing/testkit/fakemx"
)

// FakeMX is a fake remote MTA on loopback that records what it receives
// and fails on demand: see package fakemx.
type FakeMX = fakemx.Server

// Received is one transaction a FakeMX saw (Messages lists the accepted
// ones).
type Received = fakemx.Transaction

// StartFakeMX is fakemx.Start: a fake MX on 127.0.0.1:0, stopped when the
// test ends.
func StartFakeMX(t testing.TB) *FakeMX {
	t.Helper()
	return fakemx.Start(t)
}
