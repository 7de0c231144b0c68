package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// cmdNodes: `nodes`, every member as the node asked sees it (GET
// /api/v1/nodes).
func (c *ctlRun) cmdNodes(args []string) error {
	_, done, err := c.prepare(c.flags("nodes"), args, 0, 0, "nodes takes no arguments")
	if err != nil {
		return err
	}
	defer done()
	ns, err := c.client.Nodes(c.ctx)
	if err != nil {
		return c.describe("nodes", err)
	}
	now := c.now()
	return c.out(ns, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tROLES\tMODE\tSTATE\tQUEUE T/D/H\tOLDEST\tPARTITIONS OPEN/ALL\tACTORS\tERROR")
		for _, n := range ns {
			open := 0
			for _, p := range n.Partitions {
				if p.Open {
					open++
				}
			}
			actors := 0
			for _, k := range n.Actors {
				actors += k
			}
			q := n.Queue
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d/%d\t%s\t%d/%d\t%d\t%s\n",
				ctlCell(n.Name), ctlCell(strings.Join(n.Roles, ",")), ctlCell(n.QueueMode), ctlCell(n.State),
				q.Total, q.Deferred, q.Held, ctlAgeOf(q.Oldest, now), open, len(n.Partitions), actors,
				ctlClip(n.Error, 60))
		}
	})
}

// ctlAgeOf is how long ago t was, for people: "45s", "4m12s", "3h07m",
// "2d05h"; "-" when t is nil. Truncated, never rounded up; a time in the
// future (clocks of two machines) is "0s".
func ctlAgeOf(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	d := max(now.Sub(*t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// cmdJourney: `journey ID`, the steps of one message on every node, in
// time order (GET /api/v1/journey/{id}).
func (c *ctlRun) cmdJourney(args []string) error {
	pos, done, err := c.prepare(c.flags("journey"), args, 1, 1, "journey needs exactly one ID")
	if err != nil {
		return err
	}
	defer done()
	id := pos[0]
	ev, err := c.client.Journey(c.ctx, id)
	if err != nil {
		return c.describe("message "+id, err)
	}
	return c.out(ev, func(w io.Writer) {
		fmt.Fprintln(w, "TIME\tNODE\tEVENT\tDETAIL")
		for _, e := range ev {
			detail := e.Detail
			if e.ID != "" && e.ID != id {
				// A report or copy made from the message has an id of
				// its own.
				detail = strings.TrimSpace("[" + e.ID + "] " + detail)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", ctlTimeMillis(e.Time), ctlCell(e.Node), ctlCell(e.Event), ctlClip(detail, 100))
		}
	})
}

// ctlTimeMillis is t in local time with milliseconds: the steps of one
// message are often within the same second.
func ctlTimeMillis(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02T15:04:05.000Z07:00")
}
