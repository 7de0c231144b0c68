package rules

// Rule is one mail rule: when every condition holds, its actions apply.
// Rules are plain JSON values: the admin API sets them, the cluster gossips
// and stores them. A Rule is a value; methods never change it.
type Rule struct {
	// Name identifies the rule in logs, in Outcome.Matched and in errors.
	// Names are unique within a rule set (Compile checks it).
	Name string `json:"name"`
	// Priority orders the rules: higher runs first; equal priorities run in
	// the byte order of their names.
	Priority int `json:"priority"`
	// Conditions must all hold (AND). A rule without conditions always
	// matches.
	Conditions []Condition `json:"conditions"`
	// Actions apply in order when the rule matches.
	Actions []Action `json:"actions"`
}

// Condition tests one property of a message.
//
// Field names the property:
//   - "sender": the envelope sender (the reverse-path; "" is the null
//     sender, which "is" with an empty Value matches);
//   - "recipient": any envelope recipient;
//   - "header:<Name>": any occurrence of that header field;
//   - "subject": the Subject header field;
//   - "size": the message size in bytes;
//   - "source": where the message came from (smtp, submission, api, dsn,
//     cluster, rule);
//   - "auth.spf", "auth.dkim", "auth.dmarc": the result of that check of
//     a message from outside (pass, fail, softfail, neutral, none,
//     temperror, permerror; DKIM's is the best of its signatures), as
//     the cluster's Authentication-Results field says; "" for other mail
//     ("auth.dmarc is fail", "auth.spf is-not pass").
//
// Op names the comparison: "is", "contains" and "matches" (a glob where '*'
// matches any run of characters and '?' one character) compare text without
// regard to case (Unicode lower case); "greater" and "less" compare the size
// with Value, a byte count with an optional K, M or G suffix (powers of
// 1024). "is" and "is-not" also compare sizes.
//
// A positive op holds when any of the field's values satisfies it (any
// recipient, any occurrence of the header field); its negation ("is-not",
// "not-contains", "not-matches") holds exactly when the positive op does
// not. A header field that is absent has no values: "header:X matches *"
// tests that X is present, "header:X not-matches *" that it is absent.
// Header values are unfolded and their RFC 2047 encoded words decoded
// before they are compared.
type Condition struct {
	Field string `json:"field"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

// Action is one thing a matching rule does. Kind names it:
//   - "reject": refuse the message; Value is "code [status] text", e.g.
//     "550 5.7.1 No thanks" (all parts optional; the default is
//     550 5.7.1). Ends the evaluation.
//   - "discard": do not deliver the message to its recipients (the
//     recipients added by redirect or forward still get it). Ends the
//     evaluation.
//   - "redirect": Value is a comma-separated list of addresses that replace
//     the recipients.
//   - "forward": Value is a comma-separated list of addresses that get a
//     copy in addition to the recipients.
//   - "add-header": Value is one header field, "Name: value".
//   - "folder": Value is the folder to file the message into (account
//     rules only).
//   - "filter": Value is the name of an external content filter to run
//     (server and cluster rules only).
//   - "vacation": send an RFC 3834 auto-reply; Value is the reply text,
//     Params may hold "subject", "from" (an address) and "days" (how often
//     one sender gets a reply, 1 to 365; default 7). Account rules only.
//   - "stop": evaluate no further rules.
type Action struct {
	Kind   string            `json:"kind"`
	Value  string            `json:"value"`
	Params map[string]string `json:"params,omitempty"`
}

// Condition fields. A header condition's field is FieldHeaderPrefix
// followed by the header field name.
const (
	FieldSender       = "sender"
	FieldRecipient    = "recipient"
	FieldSubject      = "subject"
	FieldSize         = "size"
	FieldSource       = "source"
	FieldHeaderPrefix = "header:"
	FieldAuthPrefix   = "auth."
)

// Condition operators.
const (
	OpIs          = "is"
	OpIsNot       = "is-not"
	OpContains    = "contains"
	OpNotContains = "not-contains"
	OpMatches     = "matches"
	OpNotMatches  = "not-matches"
	OpGreater     = "greater"
	OpLess        = "less"
)

// Action kinds.
const (
	ActionReject    = "reject"
	ActionDiscard   = "discard"
	ActionRedirect  = "redirect"
	ActionForward   = "forward"
	ActionAddHeader = "add-header"
	ActionFolder    = "folder"
	ActionFilter    = "filter"
	ActionVacation  = "vacation"
	ActionStop      = "stop"
)

// Vacation parameters (keys of Action.Params; case does not matter).
const (
	ParamSubject = "subject"
	ParamFrom    = "from"
	ParamDays    = "days"
)

// Scope says where a rule runs, which decides the actions it may use.
type Scope int

// The scopes.
const (
	// ScopeServer: rules of one node, run by that node's Enqueuer.
	ScopeServer Scope = iota + 1
	// ScopeCluster: rules every member applies, run by the Enqueuer of the
	// node whose queue takes the message.
	ScopeCluster
	// ScopeAccount: an account's rules, run by its account actor at
	// delivery.
	ScopeAccount
)

// String is "server", "cluster" or "account".
func (s Scope) String() string {
	switch s {
	case ScopeServer:
		return "server"
	case ScopeCluster:
		return "cluster"
	case ScopeAccount:
		return "account"
	}
	return "unknown"
}
