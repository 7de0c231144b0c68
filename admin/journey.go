package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// JourneyQuery is GET /api/v1/journey?messageId=&from=&to=&since=&until=&limit=:
// the messages every field set matches (From and To an address, or a
// domain "@example.test"), queued between Since and Until.
type JourneyQuery struct {
	MessageID string    `json:"messageId,omitempty"`
	From      string    `json:"from,omitempty"`
	To        string    `json:"to,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Until     time.Time `json:"until,omitzero"`
	Limit     int       `json:"limit,omitempty"` // 0: 100; at most 1000
}

// JourneyMessage is a message a search found: where it was queued (Node:
// every member that queued it, comma-separated), when, and what it was.
// Its journey is GET /api/v1/journey/{id}.
type JourneyMessage struct {
	ID        string    `json:"id"`
	Node      string    `json:"node"`
	Time      time.Time `json:"time"`
	From      string    `json:"from"`
	To        []string  `json:"to"`
	MessageID string    `json:"messageId,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Size      int64     `json:"size"`
}

// Limits of a journey search.
const (
	DefaultJourneyLimit = 100
	MaxJourneyLimit     = 1000
)

// journeyQuery reads the query of GET /api/v1/journey. since and until
// are RFC 3339 times or durations before now ("24h").
func journeyQuery(v url.Values, now time.Time) (JourneyQuery, error) {
	q := JourneyQuery{MessageID: strings.TrimSpace(v.Get("messageId")), From: strings.TrimSpace(v.Get("from")),
		To: strings.TrimSpace(v.Get("to"))}
	for k := range v {
		switch k {
		case "messageId", "from", "to", "since", "until", "limit":
		default:
			return q, badField(k, fmt.Sprintf("%s: unknown parameter (messageId, from, to, since, until, limit)", k))
		}
	}
	for _, f := range []struct {
		name  string
		value string
	}{{"messageId", q.MessageID}, {"from", q.From}, {"to", q.To}} {
		if len(f.value) > 998 || strings.ContainsAny(f.value, "\x00\r\n") {
			return q, badField(f.name, f.name+": longer than 998 bytes or with a control character")
		}
	}
	var err error
	if q.Since, err = timeParam(v.Get("since"), now); err != nil {
		return q, badField("since", "since: "+err.Error())
	}
	if q.Until, err = timeParam(v.Get("until"), now); err != nil {
		return q, badField("until", "until: "+err.Error())
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return q, badField("until", "until is before since")
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxJourneyLimit {
			return q, badField("limit", fmt.Sprintf("limit %q: want a number from 1 to %d", s, MaxJourneyLimit))
		}
		q.Limit = n
	}
	return q, nil
}

// timeParam is an RFC 3339 time, or a duration before now ("90m").
func timeParam(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration before now must not be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-12-01T10:00:00Z) nor a duration (24h)", s)
	}
	return t, nil
}

func (h *handler) findMessages(w http.ResponseWriter, r *http.Request) {
	q, err := journeyQuery(r.URL.Query(), time.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ms, err := h.api.FindMessages(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ms == nil {
		ms = []JourneyMessage{}
	}
	for i := range ms {
		if ms[i].To == nil {
			ms[i].To = []string{}
		}
	}
	writeJSON(w, http.StatusOK, ms)
}

// FindMessages is GET /api/v1/journey with q's fields as parameters.
func (c *Client) FindMessages(ctx context.Context, q JourneyQuery) ([]JourneyMessage, error) {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("messageId", q.MessageID)
	set("from", q.From)
	set("to", q.To)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	p := "/api/v1/journey"
	if len(v) > 0 {
		p += "?" + v.Encode()
	}
	var out []JourneyMessage
	err := c.call(ctx, http.MethodGet, p, nil, &out)
	return out, err
}
