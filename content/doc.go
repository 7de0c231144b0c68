// Package content is the content pipeline of a node's Enqueuer: the
// cluster-wide and server-wide rules (package rules) and the external
// filters they name (package filter), run on every message entering the
// node's queue; and the replication that keeps the cluster-wide rule set
// the same on every member (the newest version wins).
package content
