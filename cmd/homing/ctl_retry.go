package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/homing-mail/homing/admin"
)

// ctlBatchItem is one item of a batch's JSON summary: what it was, and
// the error it met.
type ctlBatchItem struct {
	ID      string `json:"id,omitempty"`
	Node    string `json:"node,omitempty"`
	Line    int    `json:"line,omitempty"`
	Address string `json:"address,omitempty"`
	Error   string `json:"error,omitempty"`
}

// ctlRetrySummary is the --json answer of `queue retry --all`.
type ctlRetrySummary struct {
	Deferred int            `json:"deferred"` // deferred messages listed
	Retried  int            `json:"retried"`
	Gone     []ctlBatchItem `json:"gone"`   // delivered or deleted since the listing
	Failed   []ctlBatchItem `json:"failed"` // any other error
}

// retryAll is `queue retry --all [--cluster | --node N]`: it lists the
// queue (this node's, every member's, or N's), then asks for a retry of
// every deferred message, each on its own node (?node=), with a progress
// display. A message that is gone by then (404: delivered or deleted since
// the listing) is skipped; any other failure is listed on stderr and makes
// the exit code 1.
func (c *ctlRun) retryAll(cluster bool, node string) error {
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
	outcomes, errs := c.batch(len(todo), func(ctx context.Context, i int) (ctlOutcome, error) {
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
			return ctlOK, nil
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			return ctlSkipped, err
		}
		return ctlFailed, err
	})

	sum := ctlRetrySummary{Deferred: len(todo), Gone: []ctlBatchItem{}, Failed: []ctlBatchItem{}}
	for i, e := range todo {
		item := ctlBatchItem{ID: e.ID, Node: e.Node}
		if errs[i] != nil {
			item.Error = ctlSanitize(c.describe("queue "+e.ID, errs[i]).Error())
		}
		switch outcomes[i] {
		case ctlOK:
			sum.Retried++
		case ctlSkipped:
			sum.Gone = append(sum.Gone, item)
		case ctlFailed:
			sum.Failed = append(sum.Failed, item)
			fmt.Fprintf(c.stderr, "homing ctl: %s%s\n", ctlOnNode(byNode, e.Node), item.Error)
		}
	}
	if c.json {
		if err := c.out(sum, nil); err != nil {
			return err
		}
	} else {
		for _, g := range sum.Gone {
			fmt.Fprintf(c.stdout, "%s%s: gone (%s)\n", ctlOnNode(byNode, g.Node), ctlCell(g.ID), g.Error)
		}
		fmt.Fprintln(c.stdout, ctlRetryLine(sum))
	}
	if len(sum.Failed) > 0 {
		return errCtlReported
	}
	return nil
}

// ctlOnNode prefixes a line about a message with its node in a
// cluster-wide batch.
func ctlOnNode(byNode bool, node string) string {
	if !byNode {
		return ""
	}
	return ctlCell(node) + ": "
}

// ctlRetryLine is the summary of `queue retry --all` for people.
func ctlRetryLine(s ctlRetrySummary) string {
	switch {
	case s.Deferred == 0:
		return "no deferred messages"
	case s.Retried == s.Deferred:
		return fmt.Sprintf("retried %d deferred %s", s.Deferred, ctlPlural(s.Deferred, "message", "messages"))
	}
	return fmt.Sprintf("retried %d of %d deferred messages (%d gone, %d failed)", s.Retried, s.Deferred, len(s.Gone), len(s.Failed))
}

// ctlPlural chooses the word for n.
func ctlPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
