package rules

import (
	"errors"
	"strings"
	"testing"
)

var allScopes = []Scope{ScopeServer, ScopeCluster, ScopeAccount}

// TestValidateScopes: which action runs where, with the exact message the
// administrator sees.
func TestValidateScopes(t *testing.T) {
	tests := []struct {
		action Action
		// want is the error per scope (server, cluster, account); "" is valid.
		want [3]string
	}{
		{Action{Kind: "reject", Value: "550 5.7.1 no"}, [3]string{}},
		{Action{Kind: "discard"}, [3]string{}},
		{Action{Kind: "redirect", Value: "a@example.org"}, [3]string{}},
		{Action{Kind: "forward", Value: "a@example.org"}, [3]string{}},
		{Action{Kind: "add-header", Value: "X-A: b"}, [3]string{}},
		{Action{Kind: "stop"}, [3]string{}},
		{Action{Kind: "folder", Value: "Junk"}, [3]string{
			`rule "x": action 1: folder is only for account rules`,
			`rule "x": action 1: folder is only for account rules`, ""}},
		{Action{Kind: "vacation", Value: "away"}, [3]string{
			`rule "x": action 1: vacation is only for account rules`,
			`rule "x": action 1: vacation is only for account rules`, ""}},
		{Action{Kind: "filter", Value: "spamd"}, [3]string{"", "",
			`rule "x": action 1: filter is only for server and cluster rules`}},
	}
	for _, tt := range tests {
		for i, scope := range allScopes {
			err := Rule{Name: "x", Actions: []Action{tt.action}}.Validate(scope)
			got := ""
			if err != nil {
				got = err.Error()
				if !errors.Is(err, ErrInvalidRule) {
					t.Errorf("%s in %s: error does not wrap ErrInvalidRule", tt.action.Kind, scope)
				}
			}
			if got != tt.want[i] {
				t.Errorf("%s in %s scope: error %q, want %q", tt.action.Kind, scope, got, tt.want[i])
			}
		}
	}
}

func TestValidateErrors(t *testing.T) {
	ok := []Action{{Kind: "stop"}}
	cond := func(f, op, v string) Rule {
		return Rule{Name: "x", Conditions: []Condition{{f, op, v}}, Actions: ok}
	}
	act := func(a Action) Rule { return Rule{Name: "x", Actions: []Action{a}} }
	tests := []struct {
		name  string
		rule  Rule
		scope Scope
		want  string // a substring of the error
	}{
		{"unknown scope", act(Action{Kind: "stop"}), Scope(0), "unknown scope"},
		{"empty name", Rule{Name: " ", Actions: ok}, ScopeServer, `rule " ": the name is empty`},
		{"name with newline", Rule{Name: "a\nb", Actions: ok}, ScopeServer, "the name contains CR or LF"},
		{"long name", Rule{Name: strings.Repeat("n", 200), Actions: ok}, ScopeServer, "longer than 128"},
		{"no actions", Rule{Name: "x"}, ScopeServer, `rule "x": no actions`},
		{"too many conditions", Rule{Name: "x", Conditions: make([]Condition, 101), Actions: ok}, ScopeServer, "more than 100 conditions"},

		{"unknown field", cond("colour", "is", "red"), ScopeServer, `condition 1: unknown field "colour"`},
		{"unknown op", cond("sender", "resembles", "x"), ScopeServer, `condition 1: unknown op "resembles"`},
		{"bad header name", cond("header:Bad Name", "is", "x"), ScopeServer, "is not a header field name"},
		{"empty header name", cond("header:", "is", "x"), ScopeServer, "is not a header field name"},
		{"contains on size", cond("size", "contains", "5"), ScopeServer, "does not apply to size"},
		{"size not a number", cond("size", "greater", "ten"), ScopeServer, "is not a byte count"},
		{"size negative", cond("size", "greater", "-1"), ScopeServer, "is not a byte count"},
		{"size negative zero", cond("size", "greater", "-0"), ScopeServer, "is not a byte count"},
		{"size plus sign", cond("size", "greater", "+1"), ScopeServer, "is not a byte count"},
		{"size suffix only", cond("size", "greater", "K"), ScopeServer, "is not a byte count"},
		{"size overflow", cond("size", "greater", "99999999999G"), ScopeServer, "too large"},
		{"unknown source", cond("source", "is", "fax"), ScopeServer, `unknown source "fax"`},
		{"contains on source", cond("source", "contains", "smtp"), ScopeServer, "does not apply to source"},
		{"greater on sender", cond("sender", "greater", "5"), ScopeServer, "applies to size only"},
		{"contains empty", cond("subject", "contains", ""), ScopeServer, "needs a value"},
		{"value with CRLF", cond("subject", "is", "a\r\nb"), ScopeServer, "contains CR or LF"},
		{"value with control", cond("subject", "is", "a\x01b"), ScopeServer, "control character"},
		{"value invalid UTF-8", cond("subject", "is", "a\xffb"), ScopeServer, "not valid UTF-8"},
		{"value too long", cond("subject", "contains", strings.Repeat("v", 1001)), ScopeServer, "longer than 1000"},

		{"unknown action", act(Action{Kind: "teleport"}), ScopeServer, `action 1: unknown action "teleport"`},
		{"params on reject", act(Action{Kind: "reject", Params: map[string]string{"a": "b"}}), ScopeServer, "params apply to vacation only"},
		{"reject 2xx", act(Action{Kind: "reject", Value: "250 ok"}), ScopeServer, `reply code "250" is not a 4xx or 5xx code`},
		{"reject 421", act(Action{Kind: "reject", Value: "421 bye"}), ScopeServer, "reserved for closing the connection"},
		{"reject 4 digits", act(Action{Kind: "reject", Value: "5501 x"}), ScopeServer, "is not a 4xx or 5xx code"},
		{"reject 560", act(Action{Kind: "reject", Value: "560 x"}), ScopeServer, "is not a 4xx or 5xx code"},
		{"reject status class", act(Action{Kind: "reject", Value: "550 4.7.1 x"}), ScopeServer, "does not match reply code 550"},
		{"reject status shape", act(Action{Kind: "reject", Value: "550 5.7 x"}), ScopeServer, "is not class.subject.detail"},
		{"reject status digits", act(Action{Kind: "reject", Value: "550 5.7.1234 x"}), ScopeServer, "is not class.subject.detail"},
		{"reject non-ASCII text", act(Action{Kind: "reject", Value: "550 5.7.1 grüße"}), ScopeServer, "printable US-ASCII only"},
		{"reject CRLF in text", act(Action{Kind: "reject", Value: "550 5.7.1 a\r\n250 ok"}), ScopeServer, "printable US-ASCII only"},
		{"reject long text", act(Action{Kind: "reject", Value: "550 " + strings.Repeat("t", 401)}), ScopeServer, "longer than 400"},
		{"discard with value", act(Action{Kind: "discard", Value: "x"}), ScopeServer, "discard takes no value"},
		{"stop with value", act(Action{Kind: "stop", Value: "x"}), ScopeServer, "stop takes no value"},
		{"redirect empty", act(Action{Kind: "redirect"}), ScopeServer, "redirect: no addresses"},
		{"redirect bad address", act(Action{Kind: "redirect", Value: "not-an-address"}), ScopeServer, `address "not-an-address"`},
		{"forward empty element", act(Action{Kind: "forward", Value: "a@example.org,,b@example.org"}), ScopeServer, "address 2 is empty"},
		{"forward percent hack", act(Action{Kind: "forward", Value: "a%b@example.org"}), ScopeServer, "relay syntax"},
		{"forward source route", act(Action{Kind: "forward", Value: "@relay.example:a@example.org"}), ScopeServer, "relay syntax"},
		{"forward CRLF", act(Action{Kind: "forward", Value: "a@example.org\r\nRCPT TO:<b@example.org>"}), ScopeServer, "forward: address"},
		{"forward too many", act(Action{Kind: "forward", Value: manyAddresses(101)}), ScopeServer, "more than 100 addresses"},
		{"add-header no colon", act(Action{Kind: "add-header", Value: "X-A yes"}), ScopeServer, `want "Name: value"`},
		{"add-header bad name", act(Action{Kind: "add-header", Value: "Bad Name: x"}), ScopeServer, "is not a header field name"},
		{"add-header injection", act(Action{Kind: "add-header", Value: "X-A: b\r\nBcc: evil@example.net"}), ScopeServer, "contains CR or LF"},
		{"add-header LF", act(Action{Kind: "add-header", Value: "X-A: b\nc"}), ScopeServer, "contains CR or LF"},
		{"add-header content-type", act(Action{Kind: "add-header", Value: "Content-Type: text/html"}), ScopeServer, "may not be added"},
		{"add-header too long", act(Action{Kind: "add-header", Value: "X-A: " + strings.Repeat("v", 995)}), ScopeServer, "longer than 998"},
		{"folder empty", act(Action{Kind: "folder", Value: "  "}), ScopeAccount, "no folder name"},
		{"folder control", act(Action{Kind: "folder", Value: "a\x00b"}), ScopeAccount, "control character"},
		{"folder tab", act(Action{Kind: "folder", Value: "a\tb"}), ScopeAccount, "contains a tab"},
		{"filter empty", act(Action{Kind: "filter"}), ScopeServer, "no filter name"},
		{"filter path", act(Action{Kind: "filter", Value: "../bin/sh"}), ScopeServer, "letters, digits"},
		{"vacation empty", act(Action{Kind: "vacation", Value: " \n"}), ScopeAccount, "no reply text"},
		{"vacation control", act(Action{Kind: "vacation", Value: "a\x1bb"}), ScopeAccount, "control character"},
		{"vacation days 0", act(Action{Kind: "vacation", Value: "a", Params: map[string]string{"days": "0"}}), ScopeAccount, "from 1 to 365"},
		{"vacation days 400", act(Action{Kind: "vacation", Value: "a", Params: map[string]string{"days": "400"}}), ScopeAccount, "from 1 to 365"},
		{"vacation days text", act(Action{Kind: "vacation", Value: "a", Params: map[string]string{"days": "week"}}), ScopeAccount, "from 1 to 365"},
		{"vacation bad from", act(Action{Kind: "vacation", Value: "a", Params: map[string]string{"from": "me"}}), ScopeAccount, `from "me"`},
		{"vacation subject CRLF", act(Action{Kind: "vacation", Value: "a", Params: map[string]string{"subject": "a\r\nBcc: x@y.example"}}), ScopeAccount, "contains CR or LF"},
		{"vacation unknown param", act(Action{Kind: "vacation", Value: "a", Params: map[string]string{"colour": "red"}}), ScopeAccount, `unknown param "colour"`},
		{"vacation param twice", act(Action{Kind: "vacation", Value: "a", Params: map[string]string{"days": "1", "Days": "2"}}), ScopeAccount, "given twice"},
		{"second action named", Rule{Name: "x", Actions: []Action{{Kind: "stop"}, {Kind: "nope"}}}, ScopeServer, "action 2:"},
		{"second condition named", Rule{Name: "x", Conditions: []Condition{{"size", "less", "1"}, {"x", "is", ""}}, Actions: ok}, ScopeServer, "condition 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rule.Validate(tt.scope)
			if err == nil {
				t.Fatalf("valid, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Rule != tt.rule.Name {
				t.Errorf("error %T does not name the rule", err)
			}
			if _, cerr := Compile([]Rule{tt.rule}, tt.scope); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Compile error %v differs from Validate's", cerr)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	rules := []Rule{
		{Name: "every field and op", Priority: 3, Conditions: []Condition{
			{"sender", "is", ""}, {"sender", "is-not", "a@example.org"}, {"recipient", "contains", "x"},
			{"recipient", "not-contains", "y"}, {"subject", "matches", "*sale*"}, {"subject", "not-matches", "?"},
			{"header:X-Spam-Flag", "is", "YES"}, {"size", "greater", "10M"}, {"size", "less", "1g"},
			{"size", "is", "0"}, {"size", "is-not", "5k"}, {"source", "is", "submission"}, {"source", "is-not", "Rule"},
		}, Actions: []Action{{Kind: "reject", Value: "552 5.3.4 Message too big for this list"}}},
		{Name: "addresses", Actions: []Action{{Kind: "redirect", Value: "<a@example.org>, b@[192.0.2.1]"},
			{Kind: "forward", Value: `"x y"@example.org`}}},
		{Name: "vacation", Actions: []Action{{Kind: "vacation", Value: "Away.\r\nBack on Monday.\n\tRegards",
			Params: map[string]string{"subject": "Away", "from": "<me@example.test>", "days": "365"}}}},
	}
	for _, r := range rules {
		if err := r.Validate(ScopeAccount); err != nil {
			t.Errorf("%s: %v", r.Name, err)
		}
	}
}

func manyAddresses(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("u")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString("@example.org")
	}
	return b.String()
}

func TestScopeString(t *testing.T) {
	for s, want := range map[Scope]string{ScopeServer: "server", ScopeCluster: "cluster", ScopeAccount: "account", Scope(9): "unknown"} {
		if got := s.String(); got != want {
			t.Errorf("Scope(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}
