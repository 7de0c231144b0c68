package admintest

import (
	"context"
	"slices"

	"github.com/homing-mail/homing/admin"
)

// History answers HistoryData: every node's for scope "cluster", this
// node's (Current.Name) otherwise. DeliveryLog answers from LogLines:
// those after q.After (scope node) or since q.Since (cluster), the last
// q.Limit.

// History returns HistoryData.
func (f *Fake) History(ctx context.Context, scope string) ([]admin.NodeHistory, error) {
	defer f.Unlock()
	if err := f.enter("History", scope); err != nil {
		return nil, err
	}
	var out []admin.NodeHistory
	for _, h := range f.HistoryData {
		if scope == "cluster" || h.Node == f.Current.Name {
			h.Minutes = slices.Clone(h.Minutes)
			out = append(out, h)
		}
	}
	return out, nil
}

// DeliveryLog returns lines of LogLines.
func (f *Fake) DeliveryLog(ctx context.Context, q admin.LogQuery) ([]admin.LogLine, error) {
	defer f.Unlock()
	if err := f.enter("DeliveryLog", q); err != nil {
		return nil, err
	}
	var out []admin.LogLine
	for _, l := range f.LogLines {
		switch {
		case q.Scope == "cluster" && !q.Since.IsZero() && !l.Time.After(q.Since):
		case q.Scope != "cluster" && l.Seq <= q.After:
		default:
			out = append(out, l)
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = admin.DefaultLogLimit
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}
