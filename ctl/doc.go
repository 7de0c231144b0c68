// Package ctl is the `homing ctl` command: a client of a node's admin HTTP
// API (package admin) for the people who run a Homing cluster, who get
// aligned tables, and for their scripts, which get the API's JSON with
// --json.
//
// It is in charge of the command line: the global flags (--admin, --token,
// --json, --timeout; $HOMING_ADMIN and $HOMING_TOKEN), the dispatch to the
// commands, each command's help (`help CMD`, `CMD --help`) and the nearest
// command for a typo, usage errors (exit 2, with the command's help),
// failures (exit 1, one line on stderr each, saying what was asked about
// and what to do, by the API's status, without the server's internal
// prefixes), server-supplied text made safe for a terminal, and the
// progress of bulk actions (queue retry --all, queue actions on several
// ids, accounts import) on stderr. Main is the entry point; cmd/homing
// calls it for `homing ctl`.
//
// One file per command group, each with its commands' help text: ctl.go
// (Main, flags, dispatch, errors, the overview), help.go (finding a
// command's help, suggestions), cluster.go (cluster, nodes, partitions,
// ready), accounts.go, import.go, messages.go, queue.go, retry.go and
// batch.go (bulk retry, batches), settings.go, rules.go (rules,
// account-rules), stats.go (actors, stats), submit.go, journey.go,
// format.go (times, sizes, table cells) and progress.go.
//
// It reaches the cluster only through the admin API: besides the standard
// library it imports admin and mail, never cluster, node, actors, storage
// or smtp, so its tests run against a fake API (admin/admintest).
package ctl
