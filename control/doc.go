// Package control is a node's control plane: it implements the admin API
// (admin.API) over the node's actors, content pipeline and cluster —
// accounts and mailboxes through the owning partition's actor, the queue,
// run-time settings, rules, statistics, mail submitted by users — and
// answers for the whole cluster by asking every member's introspect actor
// over the cluster channel. It also registers the gauges read from the
// node's state at scrape time.
package control
