package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/homing-mail/homing/storage"
)

const checkUsage = `usage: homing check DATA_DIR [--repair] [--account-store DIR]

Verifies a node's data directory offline: opens the queue (DATA_DIR/queue)
and every account partition (DATA_DIR/accounts/pNNNN, or --account-store)
exclusively, as a node would, so it refuses stores a running node holds;
reads every queued envelope and body and every mailbox message's metadata
and bytes (in badger, or in the stores' body files), checks their length and
CRC-32C and every table block's checksum, lists body files no record holds,
and compares each account's usage counters with what is stored.
It reports each store as ok or with its damaged records and their keys.

--repair isolates the damage: a queued message whose body is damaged is held
as damaged (the node never relays or delivers it; delete it with homing ctl
queue delete ID), one whose envelope is unreadable is removed; a damaged
mailbox message is removed and the usage counters are set to what is stored;
an unreadable KEYREGISTRY is moved aside; body files no record holds are
removed. It says what it did. A truncated
table or a lost MANIFEST is reported, not repaired: restore the directory.

Exit status: 0 when everything is intact, 1 when damage was found (repaired
or not), 2 when a store could not be checked (held by a running node, an
I/O error) or the arguments are wrong.
`

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	repair := fs.Bool("repair", false, "isolate what is damaged (see above)")
	accounts := fs.String("account-store", "", "root of the account partitions (default DATA_DIR/accounts)")
	// Flags may come before or after DATA_DIR.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, checkUsage)
				return 0
			}
			fmt.Fprintf(stderr, "homing check: %v\n\n%s", err, checkUsage)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "homing check: want one DATA_DIR\n\n%s", checkUsage)
		return 2
	}
	data := pos[0]
	if *accounts == "" {
		*accounts = filepath.Join(data, "accounts")
	}
	opt := storage.Options{}
	reports := []*storage.CheckReport{storage.CheckQueue(filepath.Join(data, "queue"), *repair, opt)}
	parts, err := storage.CheckAccountStore(*accounts, *repair, opt)
	if err != nil {
		fmt.Fprintf(stderr, "homing check: the account store %s: %v\n", *accounts, err)
		return 2
	}
	reports = append(reports, parts...)

	checked, damaged, unchecked := 0, 0, 0
	for _, r := range reports {
		if r.Absent {
			fmt.Fprintf(stdout, "%s (%s): none\n", r.Store, r.Dir)
			continue
		}
		checked++
		printReport(stdout, r)
		switch {
		case r.Err != nil && !errors.Is(r.Err, storage.ErrDamaged):
			unchecked++
		case !r.OK():
			damaged++
		}
	}
	switch {
	case checked == 0:
		fmt.Fprintf(stderr, "homing check: no queue or account partition in %s\n", data)
		return 2
	case unchecked > 0:
		fmt.Fprintf(stderr, "homing check: %d of %d stores could not be checked (stop the node that holds them)\n", unchecked, checked)
		return 2
	case damaged > 0:
		verb := "found"
		if *repair {
			verb = "found and isolated"
		}
		fmt.Fprintf(stdout, "homing check: damage %s in %d of %d stores\n", verb, damaged, checked)
		if !*repair {
			fmt.Fprintln(stdout, "homing check: --repair holds damaged queued messages and removes damaged mailbox messages")
		}
		return 1
	}
	fmt.Fprintf(stdout, "homing check: %d stores, no damage\n", checked)
	return 0
}

func printReport(w io.Writer, r *storage.CheckReport) {
	head := fmt.Sprintf("%s (%s)", r.Store, r.Dir)
	what := fmt.Sprintf("%d messages", r.Messages)
	if r.Store != "queue" {
		what = fmt.Sprintf("%d accounts, %d messages", r.Accounts, r.Messages)
	}
	for _, done := range r.Repaired {
		fmt.Fprintf(w, "%s: repaired: %s\n", head, done)
	}
	if n := len(r.Orphans); n > 0 && r.Err == nil {
		what := "the node removes them when it opens the store; --repair removes them now"
		if len(r.Repaired) > 0 {
			what = "removed"
		}
		fmt.Fprintf(w, "%s: %d body file(s) no record holds (left by a crash; not damage): %s\n", head, n, what)
	}
	switch {
	case errors.Is(r.Err, storage.ErrLocked):
		fmt.Fprintf(w, "%s: not checked: in use by a running node (stop it first): %v\n", head, r.Err)
	case errors.Is(r.Err, storage.ErrDamaged):
		fmt.Fprintf(w, "%s: DAMAGED, does not open: %v\n", head, r.Err)
	case r.Err != nil:
		fmt.Fprintf(w, "%s: not checked: %v\n", head, r.Err)
	case len(r.Damaged) == 0:
		fmt.Fprintf(w, "%s: ok, %s\n", head, what)
	default:
		fmt.Fprintf(w, "%s: DAMAGED, %d damaged record(s) in %s\n", head, len(r.Damaged), what)
		for _, f := range r.Damaged {
			fmt.Fprintf(w, "  %s: %s\n", f.Key, oneLine(f.Problem))
			if f.Action != "" {
				fmt.Fprintf(w, "    repaired: %s\n", f.Action)
			}
		}
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
