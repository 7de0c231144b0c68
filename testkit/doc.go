// Package testkit helps test Homing and code built on it: it starts nodes in
// process on loopback port 0 with short timers, starts in-process clusters
// and real `homing` processes (for tests that must cross processes: kill -9,
// restarts), and sends mail over real SMTP.
//
// It imports node, so only the packages above node can use it. The helpers
// that need nothing from Homing are leaf packages under it, which the tests
// of every package can use:
//
//   - testkit/wait: poll a condition with a deadline (wait.For), or check
//     that one stays false or true (wait.Never, wait.Consistently).
//   - testkit/tlog: a *slog.Logger into t.Log, prefixed with a name, safe
//     after the test; tlog.Lines keeps the lines for tests that wait for one.
//   - testkit/fakemx: a fake remote MX that records what it receives and
//     fails on demand (per command: refuse, hang up, delay), and can
//     require AUTH PLAIN as a smarthost does.
//   - testkit/testca: a test certificate authority (server certificates
//     for names, its pool and PEM file).
//   - testkit/ststest: an HTTPS server on loopback serving MTA-STS
//     policies for mta-sts.DOMAIN names, with chosen faults.
//   - testkit/probe: an actor whose mailbox a test asserts on
//     (probe.Expect[T], ExpectNothing).
//   - testkit/clock: a fake clock to hand code a func() time.Time.
//   - testkit/failtb: a testing.TB that records failures, for testing
//     test helpers.
//   - testkit/pebble: Debian's pebble, an ACME CA, on loopback, its
//     lookups sent to a testkit/dnstest server.
//
// Everything waits on events or polls with a deadline; nothing sleeps to
// synchronise. Only loopback addresses are used.
package testkit
