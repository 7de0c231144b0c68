// Package testkit helps test Homing and code built on it: it starts nodes in
// process on loopback port 0 with short timers, starts real `homing`
// processes (for tests that must cross processes: kill -9, restarts),
// provides a fake remote MX that records what it receives and fails on
// demand, sends mail over real SMTP, and logs into t.Log with the node's name.
//
// Everything waits on events or polls with a deadline; nothing sleeps to
// synchronise. Only loopback addresses are used.
package testkit
