// Package guard decides who may try how much: how many password checks run
// at once, how many failed logins a client network and an account (from
// that network) may make before they are slowed down and then refused, how
// many connections a network may hold, and how many messages a network or
// a sender may send in a time.
//
// It is the one place where those budgets live, so that every way into the
// node that checks a password (SMTP AUTH on the submission listener, the
// cluster's X-HOMING-CLUSTER, POST /api/v1/submit, later IMAP and POP3
// logins) spends from the same budgets and waits at the same gate.
//
//   - Gate bounds the password checks in progress (argon2id takes about
//     19 MiB and tens of milliseconds of a core each): at most N at once,
//     sized to the cores by default; an attempt that gets no slot within a
//     short wait is refused at once (ErrBusy), so excess load costs neither
//     memory nor an unbounded queue.
//   - Budget counts failures per key over a sliding window, and a check
//     reserves its failure before it runs: with a limit of 10, 50 guesses
//     in parallel get at most 10 real checks. A success refunds the
//     reservation, a failure keeps it.
//   - Guard puts them together for a login: budgets per client network
//     (IPv4 /24, IPv6 /64 by default) and per account and network (after
//     Dovecot), so failures from one network slow, then refuse, that
//     network and that account from that network — and never the owner
//     logging in from elsewhere. The delay after a failure doubles with the
//     recent failures, up to a bound.
//   - Counter counts what a key holds open (connections per network).
//   - Rate is a token bucket per key (messages per network, per sender).
//
// Everything is safe for concurrent use, bounded in memory (keys whose
// state has expired are dropped, and each table keeps at most a fixed
// number of keys, forgetting the least recently used first) and takes its
// time from an injectable clock. The package imports only mail from
// Homing, for the error taxonomy.
package guard
