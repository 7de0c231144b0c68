package ctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/homing-mail/homing/admin"
)

// retrySummary is the --json answer of `queue retry --all`.
type retrySummary struct {
	Deferred int         `json:"deferred"` // deferred messages listed
	Retried  int         `json:"retried"`
	Gone     []batchItem `json:"gone"`   // delivered or deleted since the listing
	Failed   []batchItem `json:"failed"` // any other error
}

// retryAll is `queue retry --all [--cluster | --node N]`: it lists the
// queue (this node's, every member's, or N's), then asks for a retry of
// every deferred message, each on its own node (?node=), with a progress
// display. A message that is gone by then (404: delivered or deleted since
// the listing) is skipped; any other failure is listed on stderr and makes
// the exit code 1.
func (c *command) retryAll(cluster bool, node string) error {
	done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	q, err := c.queueOf(cluster, node)
	if err != nil {
		return err
	}
	var todo []admin.QueueEntry
	for _, e := range q {
		if e.State == "deferred" {
			todo = append(todo, e)
		}
	}
	byNode := cluster || node != ""
	outcomes, errs := c.batch(len(todo), func(ctx context.Context, i int) (outcome, error) {
		e := todo[i]
		var err error
		if byNode {
			err = c.client.NodeQueueAction(ctx, e.Node, e.ID, admin.ActionRetry)
		} else {
			err = c.client.QueueAction(ctx, e.ID, admin.ActionRetry)
		}
		var ae *admin.Error
		switch {
		case err == nil:
			return outcomeOK, nil
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			return outcomeSkipped, err
		}
		return outcomeFailed, err
	})

	sum := retrySummary{Deferred: len(todo), Gone: []batchItem{}, Failed: []batchItem{}}
	for i, e := range todo {
		item := batchItem{ID: e.ID, Node: e.Node}
		if errs[i] != nil {
			t := queueThing(e.ID, e.Node)
			t.hint = "" // gone: delivered or deleted since the listing, as the line says
			item.Error = sanitize(c.describe(t, errs[i]).Error())
		}
		switch outcomes[i] {
		case outcomeOK:
			sum.Retried++
		case outcomeSkipped:
			sum.Gone = append(sum.Gone, item)
		case outcomeFailed:
			sum.Failed = append(sum.Failed, item)
			fmt.Fprintf(c.stderr, "homing ctl: %s\n", item.Error) // it names the node
		}
	}
	if c.json {
		if err := c.out(sum, nil); err != nil {
			return err
		}
	} else {
		for _, g := range sum.Gone {
			fmt.Fprintf(c.stdout, "%s%s: gone (%s)\n", onNode(byNode, g.Node), cell(g.ID), g.Error)
		}
		fmt.Fprintln(c.stdout, retryLine(sum))
	}
	if len(sum.Failed) > 0 {
		return errReported
	}
	return nil
}

// onNode prefixes a line about a message with its node in a
// cluster-wide batch.
func onNode(byNode bool, node string) string {
	if !byNode {
		return ""
	}
	return cell(node) + ": "
}

// retryLine is the summary of `queue retry --all` for people.
func retryLine(s retrySummary) string {
	switch {
	case s.Deferred == 0:
		return "no deferred messages"
	case s.Retried == s.Deferred:
		return fmt.Sprintf("retried %d deferred %s", s.Deferred, plural(s.Deferred, "message", "messages"))
	}
	return fmt.Sprintf("retried %d of %d deferred messages (%d gone, %d failed)", s.Retried, s.Deferred, len(s.Gone), len(s.Failed))
}
