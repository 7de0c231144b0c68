package control

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
)

// FindMessages searches the journal of every live member (each keeps the
// messages queued on it, for --journal-retention) and merges what they
// found: a message queued on several members (a transfer) is listed once,
// with every member in Node.
func (a *API) FindMessages(ctx context.Context, q admin.JourneyQuery) ([]admin.JourneyMessage, error) {
	out, err := a.localFind(q)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(q)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range a.others() {
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			var found []admin.JourneyMessage
			if err := a.ask(ctx, m, &pb.Introspect{Kind: "journey-search", Json: b}, &found); err != nil {
				a.Logger.Warn("journey search incomplete", "member", m.Name, "err", err)
				return
			}
			mu.Lock()
			out = append(out, found...)
			mu.Unlock()
		}(m)
	}
	wg.Wait()
	return mergeFound(out, q.Limit), nil
}

// localFind searches this node's journal.
func (a *API) localFind(q admin.JourneyQuery) ([]admin.JourneyMessage, error) {
	ms, err := a.System.Stats().Journal.Search(actors.JournalQuery{MessageID: q.MessageID, From: q.From, To: q.To,
		Since: q.Since, Until: q.Until, Limit: q.Limit})
	if err != nil {
		return nil, a.damaged(err, "the journal")
	}
	out := make([]admin.JourneyMessage, 0, len(ms))
	for _, m := range ms {
		out = append(out, admin.JourneyMessage{ID: m.ID, Node: a.Info.Name, Time: m.Time, From: m.From, To: m.To,
			MessageID: m.MessageID, Subject: m.Subject, Size: m.Size})
	}
	return out, nil
}

// mergeFound lists each message once (the earliest record, every node
// that has one), the newest first, at most limit (0: the default).
func mergeFound(ms []admin.JourneyMessage, limit int) []admin.JourneyMessage {
	if limit <= 0 {
		limit = admin.DefaultJourneyLimit
	}
	byID := map[string]int{}
	var out []admin.JourneyMessage
	for _, m := range ms {
		i, ok := byID[m.ID]
		if !ok {
			byID[m.ID] = len(out)
			out = append(out, m)
			continue
		}
		if !strings.Contains(","+out[i].Node+",", ","+m.Node+",") {
			out[i].Node += "," + m.Node
		}
		if m.Time.Before(out[i].Time) {
			node := out[i].Node
			out[i] = m
			out[i].Node = node
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}
