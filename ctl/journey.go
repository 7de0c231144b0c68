package ctl

import (
	"fmt"
	"io"
	"strings"
)

// cmdJourney: `journey ID`, the steps of one message on every node, in
// time order (GET /api/v1/journey/{id}).
func (c *command) cmdJourney(args []string) error {
	pos, done, err := c.prepare(c.flags("journey"), args, 1, 1, "journey needs exactly one ID")
	if err != nil {
		return err
	}
	defer done()
	id := pos[0]
	ev, err := c.client.Journey(c.ctx, id)
	if err != nil {
		return c.describe(thing{name: "record of message " + id + " on any node",
			hint: "homing ctl queue --cluster lists the messages queued now"}, err)
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
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", formatTimeMillis(e.Time), cell(e.Node), cell(e.Event), clip(detail, 100))
		}
	})
}

const journeyHelp = `usage: homing ctl journey ID

The path of queued message ID across the cluster, asked of every member, in
time order: received, queued, transferred, delivered or stored, relayed,
deferred (with the reason), failed, its report, left. ID is the queue id the
SMTP server gave ("250 2.0.0 OK queued as ID"), also shown by homing ctl
queue and in every log line of the message (queueID=). Each node keeps a
bounded journal in memory: a restart forgets it.

examples:
  homing ctl journey 01JD5X8Q6M0000000000000000
  homing ctl journey 01JD5X8Q6M0000000000000000 --json
`
