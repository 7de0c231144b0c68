// Package node assembles one Homing node from its parts: the durable queue
// and the account store (package storage), the actors (package actors), the
// SMTP listeners (package smtp) and the admin endpoint (package admin). It
// owns the order of start-up and shutdown: listeners close first, so no
// 250 is given that the queue cannot honour, then the actors, then the
// stores.
//
// Several nodes can run in one process (no package-level state), which is
// what package testkit does.
package node
