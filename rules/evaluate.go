package rules

import (
	"cmp"
	"slices"
)

// compiledRule is a Rule checked and prepared for Evaluate.
type compiledRule struct {
	name     string
	priority int
	conds    []cond
	never    bool // a condition could not be understood (lenient compilation)
	acts     []act
}

// Set is a compiled rule set in evaluation order. It is immutable: safe
// for concurrent use by any number of goroutines, and cheap to swap
// atomically when the rules change. A nil *Set has no rules.
type Set struct {
	rules []compiledRule
}

// Compile validates every rule for scope (Rule.Validate), refuses two
// rules with the same name, and returns the set sorted for evaluation:
// higher Priority first, equal priorities by name. The error is a
// *ValidationError for the first problem found. Compile does not keep
// references to rules.
func Compile(rules []Rule, scope Scope) (*Set, error) {
	s := &Set{rules: make([]compiledRule, 0, len(rules))}
	seen := make(map[string]bool, len(rules))
	for _, r := range rules {
		c, err := compileRule(r, scope, true)
		if err != nil {
			return nil, err
		}
		if seen[r.Name] {
			return nil, &ValidationError{Rule: r.Name, Reason: "another rule has the same name"}
		}
		seen[r.Name] = true
		s.rules = append(s.rules, c)
	}
	s.sort()
	return s, nil
}

// Len returns the number of rules in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.rules)
}

// Evaluate runs the set on m: each rule whose conditions all hold adds its
// name to Matched and applies its actions in order, until an action ends
// the evaluation (stop, reject, discard). See Outcome for how actions of
// several rules combine. Evaluate is deterministic, does no I/O, and never
// changes m.
func (s *Set) Evaluate(m Message) Outcome {
	var o Outcome
	if s == nil {
		return o
	}
	for i := range s.rules {
		r := &s.rules[i]
		if !r.matches(&m) {
			continue
		}
		o.Matched = append(o.Matched, r.name)
		if r.apply(&o) {
			break
		}
	}
	return o
}

// Evaluate runs rules on m without compiling them first: it sorts them as
// Compile does (equal priority and name keep their given order) and
// evaluates them as Set.Evaluate does. Rules nobody validated are handled
// safely: a condition Evaluate cannot understand never holds, so its rule
// never matches; an action it cannot understand is skipped, except a
// reject, which refuses with 550 5.7.1. Scopes are not checked. Evaluate
// never panics and never changes rules or m.
func Evaluate(rules []Rule, m Message) Outcome {
	s := &Set{rules: make([]compiledRule, 0, len(rules))}
	for _, r := range rules {
		c, _ := compileRule(r, 0, false)
		s.rules = append(s.rules, c)
	}
	s.sort()
	return s.Evaluate(m)
}

// sort puts the rules in evaluation order: higher priority first, then by
// name; stable, so that equal rules keep their given order.
func (s *Set) sort() {
	slices.SortStableFunc(s.rules, func(a, b compiledRule) int {
		if c := cmp.Compare(b.priority, a.priority); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
}

// matches reports whether every condition of r holds for m.
func (r *compiledRule) matches(m *Message) bool {
	if r.never {
		return false
	}
	for i := range r.conds {
		if !r.conds[i].holds(m) {
			return false
		}
	}
	return true
}

// apply applies r's actions to o and reports whether the evaluation ends.
// Nothing in o shares memory with r.
func (r *compiledRule) apply(o *Outcome) (end bool) {
	for i := range r.acts {
		a := &r.acts[i]
		switch a.kind {
		case ActionReject:
			rej := *a.reject
			*o = Outcome{Reject: &rej, Matched: o.Matched}
			return true
		case ActionDiscard:
			o.Discard = true
			return true
		case ActionStop:
			return true
		case ActionRedirect:
			o.Redirect = appendUnique(o.Redirect, a.addrs...)
		case ActionForward:
			o.Forward = appendUnique(o.Forward, a.addrs...)
		case ActionAddHeader:
			o.AddHeaders = appendUnique(o.AddHeaders, a.text)
		case ActionFolder:
			if o.Folder == "" {
				o.Folder = a.text
			}
		case ActionFilter:
			o.Filters = appendUnique(o.Filters, a.text)
		case ActionVacation:
			if o.Vacation == nil {
				v := *a.vac
				o.Vacation = &v
			}
		}
	}
	return false
}
