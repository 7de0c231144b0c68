package ctl

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/homing-mail/homing/admin"
)

// cmdJourney: `journey ID`, the steps of one message on every node, in
// time order (GET /api/v1/journey/{id}); `journey --from A --to B
// --message-id M --since D`, the messages that match, found in the
// journals of every node (GET /api/v1/journey?...), and the journey of
// the one found when there is only one.
func (c *command) cmdJourney(args []string) error {
	fs := c.flags("journey")
	var q admin.JourneyQuery
	var since, until string
	fs.StringVar(&q.From, "from", "", "the sender (an address, or @domain)")
	fs.StringVar(&q.To, "to", "", "a recipient (an address, or @domain)")
	fs.StringVar(&q.MessageID, "message-id", "", "the Message-ID header field's value")
	fs.StringVar(&since, "since", "", "queued since: a duration before now (24h) or an RFC 3339 time")
	fs.StringVar(&until, "until", "", "queued until: a duration before now or an RFC 3339 time")
	fs.IntVar(&q.Limit, "limit", 0, "at most this many messages (default 100, at most 1000)")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	search := q.From != "" || q.To != "" || q.MessageID != "" || since != "" || until != ""
	switch {
	case len(pos) > 1:
		return usagef("journey takes one ID")
	case len(pos) == 1 && search:
		return usagef("journey: give an ID or the search flags (--from, --to, --message-id, --since, --until), not both")
	case len(pos) == 0 && !search:
		return usagef("journey needs an ID, or --from, --to, --message-id, --since or --until to find messages")
	}
	now := c.now()
	if q.Since, err = timeFlag(since, now); err != nil {
		return usagef("--since: %v", err)
	}
	if q.Until, err = timeFlag(until, now); err != nil {
		return usagef("--until: %v", err)
	}
	done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	if len(pos) == 1 {
		return c.showJourney(pos[0])
	}
	found, err := c.client.FindMessages(c.ctx, q)
	if err != nil {
		return c.describe(thing{name: "messages"}, err)
	}
	if c.json {
		return c.out(found, nil)
	}
	if len(found) == 0 {
		fmt.Fprintln(c.stdout, "no message found (the journals keep --journal-retention, 7 days by default)")
		return nil
	}
	if err := c.out(found, func(w io.Writer) {
		fmt.Fprintln(w, "QUEUED\tID\tNODE\tFROM\tTO\tSUBJECT")
		for _, m := range found {
			from := m.From
			if from == "" {
				from = "<>"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", formatTime(m.Time), cell(m.ID), cell(m.Node), cell(from),
				cell(clip(strings.Join(m.To, ","), 60)), cell(clip(m.Subject, 60)))
		}
	}); err != nil || len(found) != 1 {
		return err
	}
	fmt.Fprintln(c.stdout)
	return c.showJourney(found[0].ID)
}

// timeFlag is an RFC 3339 time or a duration before now; "" is none.
func timeFlag(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (24h, 90m) nor an RFC 3339 time (2026-12-01T10:00:00Z)", s)
	}
	return t, nil
}

// showJourney prints the journey of message id.
func (c *command) showJourney(id string) error {
	ev, err := c.client.Journey(c.ctx, id)
	if err != nil {
		return c.describe(thing{name: "record of message " + id + " on any node",
			hint: "homing ctl queue --cluster lists the messages queued now; homing ctl journey --from/--to/--since finds others"}, err)
	}
	return c.out(admin.Journey{Steps: ev}, func(w io.Writer) {
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
       homing ctl journey [--from ADDR] [--to ADDR] [--message-id ID] [--since D] [--until D] [--limit N]

The path of queued message ID across the cluster, asked of every member, in
time order: queued, transferred, delivered or stored, relayed, deferred
(with the reason), failed, its report, left. ID is the queue id the SMTP
server gave ("250 2.0.0 OK queued as ID"), also shown by homing ctl queue
and in every line of the delivery log. Each node keeps its journal on disk
for --journal-retention (7 days by default): the journey survives restarts.

With search flags instead of an ID, the messages queued on any node that
match all of them, the newest first (and the journey of the one found when
there is only one):
  --from ADDR        the envelope sender (or @domain for every sender of it)
  --to ADDR          a recipient (or @domain)
  --message-id ID    the Message-ID header field (with or without <>)
  --since D          queued since D: a duration before now (24h, 90m) or an
                     RFC 3339 time (2026-12-01T10:00:00Z)
  --until D          queued until D
  --limit N          at most N messages (default 100, at most 1000)

examples:
  homing ctl journey 01JD5X8Q6M0000000000000000
  homing ctl journey 01JD5X8Q6M0000000000000000 --json
  homing ctl journey --to bob@example.net --since 24h
  homing ctl journey --message-id '<20261201.1234@mail.example.net>'
`
