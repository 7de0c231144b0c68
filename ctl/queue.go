package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/homing-mail/homing/admin"
)

func (c *command) cmdQueue(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "show":
			return c.cmdQueueShow(args[1:])
		case admin.ActionRetry, admin.ActionHold, admin.ActionRelease, admin.ActionDelete:
			return c.cmdQueueAction(args[0], args[1:])
		}
		if !strings.HasPrefix(args[0], "-") {
			return unknownSub("queue", args[0], "show", "retry", "hold", "release", "delete")
		}
	}
	fs := c.flags("queue")
	all := fs.Bool("cluster", false, "every member's queue")
	node := fs.String("node", "", "one member's queue")
	_, done, err := c.prepare(fs, args, 0, 0, "queue: unexpected argument")
	if err != nil {
		return err
	}
	defer done()
	if *all && *node != "" {
		return usagef("give only one of --cluster and --node")
	}
	q, err := c.queueOf(*all, *node)
	if err != nil {
		return err
	}
	withNode := *all || *node != ""
	return c.out(q, func(w io.Writer) {
		if withNode {
			fmt.Fprint(w, "NODE\t")
		}
		fmt.Fprintln(w, "ID\tSTATE\tATTEMPTS\tNEXT ATTEMPT\tSIZE\tSENDER\tRECIPIENTS\tLAST ERROR")
		for _, e := range q {
			if withNode {
				fmt.Fprintf(w, "%s\t", cell(e.Node))
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", cell(e.ID), cell(e.State), e.Attempts,
				formatTimePtr(e.NextAttempt), formatSize(e.Size), formatSender(e.Sender), recipients(e.Recipients), clip(e.LastError, 60))
		}
	})
}

// queueOf lists this node's queue, every member's (cluster), or one
// member's (node: the cluster-wide listing cut to that node). Entries of
// the cluster-wide listing name their node.
func (c *command) queueOf(cluster bool, node string) ([]admin.QueueEntry, error) {
	if !cluster && node == "" {
		q, err := c.client.Queue(c.ctx)
		if err != nil {
			return nil, c.describe(thing{name: "queue"}, err)
		}
		return q, nil
	}
	all, err := c.client.ClusterQueue(c.ctx)
	if err != nil {
		return nil, c.describe(thing{name: "cluster queue"}, err)
	}
	if node == "" {
		return all, nil
	}
	q := []admin.QueueEntry{}
	for _, e := range all {
		if e.Node == node {
			q = append(q, e)
		}
	}
	return q, nil
}

// recipients is the first recipient and how many more there are.
func recipients(rs []admin.QueueRecipient) string {
	switch len(rs) {
	case 0:
		return "-"
	case 1:
		return cell(rs[0].Address)
	}
	return fmt.Sprintf("%s (+%d)", cell(rs[0].Address), len(rs)-1)
}

func (c *command) cmdQueueShow(args []string) error {
	pos, done, err := c.prepare(c.flags("queue show"), args, 1, 1, "queue show needs exactly one ID")
	if err != nil {
		return err
	}
	defer done()
	e, err := c.client.QueueEntry(c.ctx, pos[0])
	if err != nil {
		return c.describe(queueThing(pos[0], ""), err)
	}
	return c.out(e, func(w io.Writer) {
		fmt.Fprintf(w, "id:\t%s\n", cell(e.ID))
		fmt.Fprintf(w, "sender:\t%s\n", formatSender(e.Sender))
		fmt.Fprintf(w, "state:\t%s\n", cell(e.State))
		fmt.Fprintf(w, "size:\t%s\n", formatSize(e.Size))
		fmt.Fprintf(w, "received:\t%s\n", formatTime(e.Received))
		fmt.Fprintf(w, "attempts:\t%d\n", e.Attempts)
		fmt.Fprintf(w, "next attempt:\t%s\n", formatTimePtr(e.NextAttempt))
		fmt.Fprintf(w, "last error:\t%s\n", cell(e.LastError))
		fmt.Fprintln(w)
		fmt.Fprintln(w, "RECIPIENT\tSTATE\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
		for _, r := range e.Recipients {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", cell(r.Address), cell(r.State), r.Attempts,
				formatTimePtr(r.NextAttempt), clip(r.LastError, 80))
		}
	})
}

// actionDone is the outcome of each queue action, for the report line.
func actionDone(action string) string {
	switch action {
	case admin.ActionRetry:
		return "retry scheduled"
	case admin.ActionHold:
		return "held"
	case admin.ActionRelease:
		return "released"
	}
	return "deleted"
}

func (c *command) cmdQueueAction(action string, args []string) error {
	fs := c.flags("queue " + action)
	node := fs.String("node", "", "act on this member's queue")
	var all, cluster *bool
	if action == admin.ActionRetry {
		all = fs.Bool("all", false, "every deferred message")
		cluster = fs.Bool("cluster", false, "with --all: of every member")
	}
	ids, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if all != nil && *all {
		switch {
		case len(ids) > 0:
			return usagef("queue retry --all takes no ID")
		case *cluster && *node != "":
			return usagef("give only one of --cluster and --node")
		}
		return c.retryAll(*cluster, *node)
	}
	switch {
	case cluster != nil && *cluster:
		return usagef("--cluster goes with --all (for single messages give --node N)")
	case len(ids) == 0:
		return usagef("queue %s needs at least one ID", action)
	}
	done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	return c.queueActions(action, *node, ids)
}

// actionSummary is the --json answer of a queue action on several ids.
type actionSummary struct {
	Action string      `json:"action"`
	Done   []string    `json:"done"`
	Failed []batchItem `json:"failed"`
}

// queueActions acts on ids, in node's queue ("": the node asked): one id
// at once, several as a batch with progress on stderr. Each success is a
// line on stdout in the order of ids, each failure a line on stderr after
// them; any failure makes the exit code 1.
func (c *command) queueActions(action, node string, ids []string) error {
	act := func(ctx context.Context, id string) error {
		if node != "" {
			return c.client.NodeQueueAction(ctx, node, id, action)
		}
		return c.client.QueueAction(ctx, id, action)
	}
	errs := make([]error, len(ids))
	if len(ids) == 1 {
		errs[0] = act(c.ctx, ids[0])
	} else {
		_, errs = c.batch(len(ids), func(ctx context.Context, i int) (outcome, error) {
			if err := act(ctx, ids[i]); err != nil {
				return outcomeFailed, err
			}
			return outcomeOK, nil
		})
	}
	sum := actionSummary{Action: action, Done: []string{}, Failed: []batchItem{}}
	for i, id := range ids {
		if errs[i] != nil {
			item := batchItem{ID: id, Node: node, Error: sanitize(c.describe(queueThing(id, node), errs[i]).Error())}
			sum.Failed = append(sum.Failed, item)
			continue
		}
		sum.Done = append(sum.Done, id)
		if !c.json {
			fmt.Fprintf(c.stdout, "%s: %s\n", cell(id), actionDone(action))
		}
	}
	for _, f := range sum.Failed {
		fmt.Fprintf(c.stderr, "homing ctl: %s\n", f.Error)
	}
	if c.json {
		if err := c.out(sum, nil); err != nil {
			return err
		}
	}
	if len(sum.Failed) > 0 {
		return errReported
	}
	return nil
}

const queueHelp = `usage: homing ctl queue [--cluster | --node N]
       homing ctl queue show ID
       homing ctl queue retry|hold|release|delete ID... [--node N]
       homing ctl queue retry --all [--cluster | --node N]

The mail queue of the node asked (--cluster: every member's, with a NODE
column; --node N: member N's).

  queue                  id, state (active, deferred, held, damaged),
                         attempts, next attempt, size, sender, recipients,
                         last error
  queue show ID          one message and each recipient's state
  queue retry ID...      try now (a deferred message's backoff is skipped)
  queue hold ID...       keep it, do not try it, until released
  queue release ID...    try a held message again
  queue delete ID...     remove it (no report is sent)
  queue retry --all      retry every deferred message

Several ids, and --all, run 4 at a time with progress on stderr; a message
that is gone by then (delivered meanwhile) is reported and skipped.

flags:
  --cluster   every member's queue
  --node N    member N's queue (the action is sent to N)
  --all       with retry: every deferred message

examples:
  homing ctl queue --cluster
  homing ctl queue show 01JD5X8Q6M0000000000000000
  homing ctl queue hold 01JD5X8Q6M0000000000000000 --node fe1
  homing ctl queue retry --all --cluster
  homing ctl queue --json | jq -r '.[] | select(.state == "deferred") | .id' | xargs homing ctl queue retry
`
