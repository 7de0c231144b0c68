package admintest

import (
	"context"
	"slices"
	"strings"

	"github.com/homing-mail/homing/admin"
)

// FindMessages answers from Found: the messages whose fields match q
// (From and To exactly or by domain, MessageID, the time range), newest
// first, at most q.Limit.
func (f *Fake) FindMessages(ctx context.Context, q admin.JourneyQuery) ([]admin.JourneyMessage, error) {
	defer f.Unlock()
	if err := f.enter("FindMessages", q); err != nil {
		return nil, err
	}
	match := func(a, want string) bool {
		a, want = strings.ToLower(a), strings.ToLower(want)
		if strings.Index(want, "@") > 0 {
			return a == want
		}
		return strings.HasSuffix(a, "@"+strings.TrimPrefix(want, "@"))
	}
	var out []admin.JourneyMessage
	for _, m := range f.Found {
		switch {
		case q.MessageID != "" && strings.Trim(m.MessageID, "<>") != strings.Trim(q.MessageID, "<>"),
			q.From != "" && !match(m.From, q.From),
			!q.Since.IsZero() && m.Time.Before(q.Since), !q.Until.IsZero() && m.Time.After(q.Until):
			continue
		case q.To != "" && !slices.ContainsFunc(m.To, func(r string) bool { return match(r, q.To) }):
			continue
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b admin.JourneyMessage) int { return b.Time.Compare(a.Time) })
	if limit := q.Limit; limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
