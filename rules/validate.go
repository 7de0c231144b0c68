package rules

import (
	"fmt"
	"strings"

	"github.com/homing-mail/homing/mail"
)

// Limits that keep a rule small enough to gossip and cheap to run.
const (
	maxNameLen      = 128
	maxConditions   = 100
	maxActions      = 100
	maxAddresses    = 100
	maxReplyText    = 400 // of a reject's text; a reply line is 512 octets (RFC 5321 §4.5.3.1.5)
	maxHeaderLine   = 998 // RFC 5322 §2.1.1
	maxFolderLen    = 255
	maxFilterName   = 64
	maxVacationText = 64 << 10
	maxVacationSubj = 200
	maxVacationDays = 365
)

// ErrInvalidRule is what every *ValidationError wraps; the admin API
// answers it with 400.
var ErrInvalidRule = mail.PermanentError("invalid rule")

// ValidationError says why a rule was refused, in words for the person who
// wrote it: `rule "x": action 2: folder is only for account rules`.
type ValidationError struct {
	// Rule is the rule's name as given.
	Rule string
	// Reason says what is wrong and where (condition or action number,
	// counting from 1).
	Reason string
}

// Error is `rule "name": reason`.
// Temporary is false: the rule is wrong as written.
func (e *ValidationError) Temporary() bool { return false }

func (e *ValidationError) Error() string { return fmt.Sprintf("rule %q: %s", e.Rule, e.Reason) }

// Unwrap returns ErrInvalidRule.
func (e *ValidationError) Unwrap() error { return ErrInvalidRule }

// Validate checks that r can run in scope: a name; at least one action;
// known fields, ops and kinds; values of the right shape (sizes, sources,
// reply codes, addresses, header fields without CR or LF, filter names,
// vacation parameters); and actions the scope allows (folder and vacation
// only for account rules, filter only for server and cluster rules). The
// error is a *ValidationError that names the first problem.
func (r Rule) Validate(scope Scope) error {
	_, err := compileRule(r, scope, true)
	return err
}

// compileRule checks and prepares r. Strict compilation stops at the first
// problem. Lenient compilation (for Evaluate, which gets rules nobody
// validated) never fails: a condition it cannot understand makes the rule
// never match, an action it cannot understand is skipped, and a reject
// whose value does not parse refuses with the default reply.
func compileRule(r Rule, scope Scope, strict bool) (compiledRule, error) {
	c := compiledRule{name: r.Name, priority: r.Priority}
	fail := func(format string, args ...any) (compiledRule, error) {
		return c, &ValidationError{Rule: r.Name, Reason: fmt.Sprintf(format, args...)}
	}
	if strict {
		switch scope {
		case ScopeServer, ScopeCluster, ScopeAccount:
		default:
			return fail("unknown scope %d", int(scope))
		}
		if strings.TrimSpace(r.Name) == "" {
			return fail("the name is empty")
		}
		if err := checkText("the name", r.Name, maxNameLen); err != nil {
			return fail("%v", err)
		}
		if len(r.Conditions) > maxConditions {
			return fail("more than %d conditions", maxConditions)
		}
		if len(r.Actions) == 0 {
			return fail("no actions")
		}
		if len(r.Actions) > maxActions {
			return fail("more than %d actions", maxActions)
		}
	}

	c.conds = make([]cond, 0, len(r.Conditions))
	for i, rc := range r.Conditions {
		k, err := compileCondition(rc)
		if err != nil {
			if strict {
				return fail("condition %d: %v", i+1, err)
			}
			c.never = true
			continue
		}
		c.conds = append(c.conds, k)
	}

	c.acts = make([]act, 0, len(r.Actions))
	for i, ra := range r.Actions {
		a, err := compileAction(ra)
		if err == nil && strict {
			err = allowedIn(a.kind, scope)
		}
		if err != nil {
			if strict {
				return fail("action %d: %v", i+1, err)
			}
			if a.kind != ActionReject {
				continue
			}
			a.reject = defaultReject()
		}
		c.acts = append(c.acts, a)
	}
	return c, nil
}

// allowedIn says whether an action of kind may run in scope.
func allowedIn(kind string, scope Scope) error {
	switch kind {
	case ActionFolder, ActionVacation:
		if scope != ScopeAccount {
			return fmt.Errorf("%s is only for account rules", kind)
		}
	case ActionFilter:
		if scope == ScopeAccount {
			// External filters are programs the administrator runs for
			// the queue; an account actor must not wait on them.
			return fmt.Errorf("%s is only for server and cluster rules", kind)
		}
	}
	return nil
}
