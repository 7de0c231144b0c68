package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Observing the cluster over time, for the console: the throughput and
// queue depth of every node per minute for the last 24 hours (kept by the
// nodes, so every viewer sees the same picture and it survives a reload),
// and the last lines of the delivery log.
type Observing interface {
	// History is this node's minutes, or every member's (scope
	// "cluster"), oldest first.
	History(ctx context.Context, scope string) ([]NodeHistory, error)
	// DeliveryLog is the delivery log's last lines: this node's after
	// sequence number q.After, or (q.Scope "cluster") every member's
	// since q.Since, oldest first, at most q.Limit.
	DeliveryLog(ctx context.Context, q LogQuery) ([]LogLine, error)
}

// NodeHistory is one node's minutes.
type NodeHistory struct {
	Node    string   `json:"node"`
	Minutes []Minute `json:"minutes"`
	Error   string   `json:"error,omitempty"` // the member could not be asked
}

// Minute is what a node did in one minute (the current one so far).
type Minute struct {
	Time      time.Time `json:"t"`         // the minute's start
	In        int64     `json:"in"`        // messages queued (250 to DATA, submit, transfers taken)
	Delivered int64     `json:"delivered"` // recipients stored in mailboxes
	Relayed   int64     `json:"relayed"`   // recipients accepted by another server
	Deferred  int64     `json:"deferred"`  // attempts that failed for now
	Bounced   int64     `json:"bounced"`   // recipients that failed for good
	Queue     int64     `json:"queue"`     // messages in the queue at the minute's end (now, for the current one)
}

// HistoryMinutes is how many minutes a node keeps: 24 hours.
const HistoryMinutes = 24 * 60

// LogQuery is GET /api/v1/log?after=&since=&limit=&scope=.
type LogQuery struct {
	Scope string    // "" or "node": this node; "cluster": every member
	After int64     // this node: lines with a higher sequence number
	Since time.Time // cluster: lines newer than this
	Limit int       // 0: 200; at most 2000
}

// LogLine is one line of a node's delivery log.
type LogLine struct {
	Node    string    `json:"node"`
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`
	QueueID string    `json:"queueID,omitempty"`
	Line    string    `json:"line"`
}

// Limits of GET /api/v1/log.
const (
	DefaultLogLimit = 200
	MaxLogLimit     = 2000
)

func (h *handler) observeRoutes() {
	h.mux.HandleFunc("GET /api/v1/history", h.history)
	h.mux.HandleFunc("GET /api/v1/log", h.deliveryLog)
}

func scopeParam(r *http.Request) (string, error) {
	switch s := r.URL.Query().Get("scope"); s {
	case "", "node":
		return "node", nil
	case "cluster":
		return s, nil
	default:
		return "", badField("scope", fmt.Sprintf("scope %q: scope must be node or cluster", s))
	}
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	scope, err := scopeParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hs, err := h.api.History(r.Context(), scope)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if hs == nil {
		hs = []NodeHistory{}
	}
	for i := range hs {
		if hs[i].Minutes == nil {
			hs[i].Minutes = []Minute{}
		}
	}
	writeJSON(w, http.StatusOK, hs)
}

func (h *handler) deliveryLog(w http.ResponseWriter, r *http.Request) {
	scope, err := scopeParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := LogQuery{Scope: scope}
	v := r.URL.Query()
	if s := v.Get("after"); s != "" {
		if q.After, err = strconv.ParseInt(s, 10, 64); err != nil || q.After < 0 {
			h.fail(w, r, badField("after", fmt.Sprintf("after %q: want a line's sequence number (0 or more)", s)))
			return
		}
	}
	if s := v.Get("since"); s != "" {
		if q.Since, err = time.Parse(time.RFC3339Nano, s); err != nil {
			h.fail(w, r, badField("since", fmt.Sprintf("since %q: want an RFC 3339 time", s)))
			return
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLogLimit {
			h.fail(w, r, badField("limit", fmt.Sprintf("limit %q: want a number from 1 to %d", s, MaxLogLimit)))
			return
		}
		q.Limit = n
	}
	lines, err := h.api.DeliveryLog(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if lines == nil {
		lines = []LogLine{}
	}
	writeJSON(w, http.StatusOK, lines)
}

// History is GET /api/v1/history?scope=.
func (c *Client) History(ctx context.Context, scope string) ([]NodeHistory, error) {
	var out []NodeHistory
	err := c.call(ctx, http.MethodGet, "/api/v1/history?scope="+url.QueryEscape(scope), nil, &out)
	return out, err
}

// DeliveryLog is GET /api/v1/log.
func (c *Client) DeliveryLog(ctx context.Context, q LogQuery) ([]LogLine, error) {
	v := url.Values{}
	if q.Scope != "" {
		v.Set("scope", q.Scope)
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out []LogLine
	err := c.call(ctx, http.MethodGet, "/api/v1/log?"+v.Encode(), nil, &out)
	return out, err
}
