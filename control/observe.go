package control

import (
	"context"
	"encoding/json"
	"sort"
	"sync"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
)

// The console's view over time: every member's history per minute and
// its delivery log, asked over the cluster channel like the rest of the
// cluster-wide introspection.

// counters reads this node's totals for its History.
func (a *API) counters() Counters {
	s := a.System.Stats()
	return Counters{In: s.Accepted.Load(), Delivered: s.DeliveredLocal.Load(), Relayed: s.Relayed.Load(),
		Deferred: s.Deferred.Load(), Bounced: s.Bounced.Load(), Queue: s.QueueDepth.Load()}
}

// StartHistory starts keeping this node's minutes; StopHistory ends it.
func (a *API) StartHistory() {
	a.mu.Lock()
	if a.history == nil {
		a.history = NewHistory(a.counters, nil)
		a.history.Start()
	}
	a.mu.Unlock()
}

// StopHistory stops the history's goroutine.
func (a *API) StopHistory() {
	a.mu.Lock()
	h := a.history
	a.mu.Unlock()
	if h != nil {
		h.Stop()
	}
}

func (a *API) localHistory() admin.NodeHistory {
	a.mu.Lock()
	h := a.history
	a.mu.Unlock()
	out := admin.NodeHistory{Node: a.Info.Name}
	if h != nil {
		out.Minutes = h.Minutes()
	}
	return out
}

func (a *API) History(ctx context.Context, scope string) ([]admin.NodeHistory, error) {
	out := []admin.NodeHistory{a.localHistory()}
	if scope != "cluster" {
		return out, nil
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range a.members(func(m cluster.Member) bool { return !m.Self }) {
		if !m.State.Live() || m.Meta.Channel == "" {
			out = append(out, admin.NodeHistory{Node: m.Name, Error: "not reachable: " + string(m.State)})
			continue
		}
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			var h admin.NodeHistory
			if err := a.ask(ctx, m, &pb.Introspect{Kind: "history"}, &h); err != nil {
				h = admin.NodeHistory{Node: m.Name, Error: err.Error()}
			}
			mu.Lock()
			out = append(out, h)
			mu.Unlock()
		}(m)
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

// localLog is this node's delivery log: after sequence number after, or
// newer than q.Since.
func (a *API) localLog(q admin.LogQuery) []admin.LogLine {
	limit := q.Limit
	if limit <= 0 {
		limit = admin.DefaultLogLimit
	}
	var out []admin.LogLine
	for _, e := range a.MailLog.Since(q.After, 0) {
		if !q.Since.IsZero() && !e.Time.After(q.Since) {
			continue
		}
		out = append(out, admin.LogLine{Node: a.Info.Name, Seq: e.Seq, Time: e.Time, Event: e.Event, QueueID: e.QueueID, Line: e.Line})
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

func (a *API) DeliveryLog(ctx context.Context, q admin.LogQuery) ([]admin.LogLine, error) {
	if q.Scope != "cluster" {
		return a.localLog(q), nil
	}
	out := a.localLog(admin.LogQuery{Since: q.Since, Limit: q.Limit})
	b, _ := json.Marshal(admin.LogQuery{Since: q.Since, Limit: q.Limit})
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range a.others() {
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			var lines []admin.LogLine
			if err := a.ask(ctx, m, &pb.Introspect{Kind: "log", Json: b}, &lines); err != nil {
				a.Logger.Warn("delivery log of a member unavailable", "member", m.Name, "err", err)
				return
			}
			mu.Lock()
			out = append(out, lines...)
			mu.Unlock()
		}(m)
	}
	wg.Wait()
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Node < out[j].Node || out[i].Node == out[j].Node && out[i].Seq < out[j].Seq
	})
	limit := q.Limit
	if limit <= 0 {
		limit = admin.DefaultLogLimit
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}
