package admin

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// A queue listing can be searched and paged (the console shows a large
// queue a page at a time): GET /api/v1/queue?q=&state=&node=&offset=&limit=
// answers the page as the usual array, oldest first, with the number of
// entries that match in the header X-Total-Count.

// Limits of a queue page.
const MaxQueuePage = 1000

// queuePage filters q by the query's q (a part of the id, the sender or a
// recipient, without regard to case), state and node, and returns the
// entries from offset, at most limit of them (all when limit is not
// given), and how many matched.
func queuePage(q []QueueEntry, v url.Values) ([]QueueEntry, int, error) {
	text := strings.ToLower(strings.TrimSpace(v.Get("q")))
	state, node := v.Get("state"), v.Get("node")
	offset, limit := 0, -1
	if s := v.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, 0, badField("offset", fmt.Sprintf("offset %q: want a number, 0 or more", s))
		}
		offset = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxQueuePage {
			return nil, 0, badField("limit", fmt.Sprintf("limit %q: want a number from 1 to %d", s, MaxQueuePage))
		}
		limit = n
	}
	if state != "" && state != "active" && state != "deferred" && state != "held" && state != "damaged" {
		return nil, 0, badField("state", fmt.Sprintf("state %q: want active, deferred, held or damaged", state))
	}
	if text == "" && state == "" && node == "" && offset == 0 && limit < 0 {
		return q, len(q), nil
	}
	var out []QueueEntry
	for _, e := range q {
		switch {
		case state != "" && e.State != state, node != "" && e.Node != node:
			continue
		case text != "" && !entryMatches(e, text):
			continue
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Received.Equal(out[j].Received) {
			return out[i].Received.Before(out[j].Received)
		}
		return out[i].ID < out[j].ID
	})
	total := len(out)
	if offset >= len(out) {
		return []QueueEntry{}, total, nil
	}
	out = out[offset:]
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, total, nil
}

func entryMatches(e QueueEntry, text string) bool {
	if strings.Contains(strings.ToLower(e.ID), text) || strings.Contains(strings.ToLower(e.Sender), text) {
		return true
	}
	for _, r := range e.Recipients {
		if strings.Contains(strings.ToLower(r.Address), text) {
			return true
		}
	}
	return false
}
