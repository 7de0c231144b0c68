package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

// sample is the message the condition table looks at.
func sample() Message {
	return Message{
		Sender:     "Alice@Example.org",
		Recipients: []string{"bob@example.test", "carol@example.test"},
		Header: Header{
			{"From", "Alice <alice@example.org>"},
			{"Subject", "Weekly Report for Q3"},
			{"X-Spam", "Yes"},
			{"Received", "from a by b"},
			{"Received", "from c by d"},
			{"X-Empty", ""},
			{"X-Encoded", "=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?="},
		},
		Size:   2048,
		Source: mail.SourceSMTP,
	}
}

func TestConditions(t *testing.T) {
	null := sample()
	null.Sender = ""
	noRcpt := sample()
	noRcpt.Recipients = nil
	fromRule := sample()
	fromRule.Source = SourceRule
	encSubject := sample()
	encSubject.Header = Header{{"Subject", "=?UTF-8?B?w5xiZXJ3ZWlzdW5n?="}} // "Überweisung"
	badCharset := sample()
	badCharset.Header = Header{{"Subject", "=?x-unknown?q?abc?="}}

	tests := []struct {
		name string
		m    Message
		c    Condition
		want bool
	}{
		// sender
		{"sender is, case folded", sample(), Condition{"sender", "is", "alice@example.ORG"}, true},
		{"sender is other", sample(), Condition{"sender", "is", "bob@example.org"}, false},
		{"sender is-not other", sample(), Condition{"sender", "is-not", "bob@example.org"}, true},
		{"sender is-not same", sample(), Condition{"sender", "is-not", "alice@example.org"}, false},
		{"sender contains", sample(), Condition{"sender", "contains", "EXAMPLE"}, true},
		{"sender contains not", sample(), Condition{"sender", "contains", "example.com"}, false},
		{"sender not-contains present", sample(), Condition{"sender", "not-contains", "example"}, false},
		{"sender not-contains absent", sample(), Condition{"sender", "not-contains", "example.com"}, true},
		{"sender matches *", sample(), Condition{"sender", "matches", "*@example.org"}, true},
		{"sender matches ?", sample(), Condition{"sender", "matches", "?lice@*"}, true},
		{"sender matches whole string only", sample(), Condition{"sender", "matches", "alice"}, false},
		{"sender matches other domain", sample(), Condition{"sender", "matches", "*@example.com"}, false},
		{"sender not-matches other", sample(), Condition{"sender", "not-matches", "*@example.com"}, true},
		{"sender not-matches same", sample(), Condition{"sender", "not-matches", "*@example.org"}, false},
		{"null sender is empty", null, Condition{"sender", "is", ""}, true},
		{"sender is not empty", sample(), Condition{"sender", "is", ""}, false},
		{"null sender contains", null, Condition{"sender", "contains", "a"}, false},
		{"null sender not-matches ?*", null, Condition{"sender", "not-matches", "?*"}, true},

		// recipient: any of them
		{"recipient is second", sample(), Condition{"recipient", "is", "Carol@example.test"}, true},
		{"recipient is none", sample(), Condition{"recipient", "is", "dave@example.test"}, false},
		{"recipient is-not present", sample(), Condition{"recipient", "is-not", "carol@example.test"}, false},
		{"recipient is-not absent", sample(), Condition{"recipient", "is-not", "dave@example.test"}, true},
		{"recipient contains", sample(), Condition{"recipient", "contains", "carol"}, true},
		{"recipient not-contains present", sample(), Condition{"recipient", "not-contains", "carol"}, false},
		{"recipient not-contains absent", sample(), Condition{"recipient", "not-contains", "dave"}, true},
		{"recipient matches", sample(), Condition{"recipient", "matches", "*@EXAMPLE.test"}, true},
		{"recipient matches none", sample(), Condition{"recipient", "matches", "dave@*"}, false},
		{"recipient not-matches none", sample(), Condition{"recipient", "not-matches", "dave@*"}, true},
		{"recipient not-matches one", sample(), Condition{"recipient", "not-matches", "bob@*"}, false},
		{"no recipients: is", noRcpt, Condition{"recipient", "is", "bob@example.test"}, false},
		{"no recipients: is-not", noRcpt, Condition{"recipient", "is-not", "bob@example.test"}, true},

		// subject
		{"subject is", sample(), Condition{"subject", "is", "weekly report for q3"}, true},
		{"subject is partial", sample(), Condition{"subject", "is", "weekly report"}, false},
		{"subject is-not", sample(), Condition{"subject", "is-not", "weekly report"}, true},
		{"subject contains", sample(), Condition{"subject", "contains", "REPORT"}, true},
		{"subject not-contains", sample(), Condition{"subject", "not-contains", "invoice"}, true},
		{"subject matches", sample(), Condition{"subject", "matches", "weekly*q?"}, true},
		{"subject not-matches", sample(), Condition{"subject", "not-matches", "weekly*"}, false},
		{"subject RFC 2047 decoded", encSubject, Condition{"subject", "contains", "überweisung"}, true},
		{"subject unknown charset compared raw", badCharset, Condition{"subject", "contains", "x-unknown"}, true},
		{"subject absent: is", noRcptNoHeader(), Condition{"subject", "is", ""}, false},
		{"subject absent: not-matches *", noRcptNoHeader(), Condition{"subject", "not-matches", "*"}, true},

		// any header field
		{"header is, name case folded", sample(), Condition{"header:x-spam", "is", "yes"}, true},
		{"header is-not", sample(), Condition{"header:X-Spam", "is-not", "yes"}, false},
		{"header contains second occurrence", sample(), Condition{"header:Received", "contains", "from c"}, true},
		{"header not-contains any occurrence", sample(), Condition{"header:Received", "not-contains", "from c"}, false},
		{"header matches", sample(), Condition{"header:From", "matches", "*<alice@*>"}, true},
		{"header not-matches", sample(), Condition{"header:From", "not-matches", "*bob*"}, true},
		{"header decoded", sample(), Condition{"header:X-Encoded", "contains", "köln"}, true},
		{"header present: matches *", sample(), Condition{"header:X-Spam", "matches", "*"}, true},
		{"header absent: matches *", sample(), Condition{"header:X-Missing", "matches", "*"}, false},
		{"header absent: not-matches *", sample(), Condition{"header:X-Missing", "not-matches", "*"}, true},
		{"header absent: is-not", sample(), Condition{"header:X-Missing", "is-not", ""}, true},
		{"header empty value is empty", sample(), Condition{"header:X-Empty", "is", ""}, true},

		// size
		{"size greater", sample(), Condition{"size", "greater", "1024"}, true},
		{"size greater equal", sample(), Condition{"size", "greater", "2048"}, false},
		{"size greater K", sample(), Condition{"size", "greater", "1k"}, true},
		{"size greater M", sample(), Condition{"size", "greater", "1M"}, false},
		{"size less", sample(), Condition{"size", "less", "4K"}, true},
		{"size less equal", sample(), Condition{"size", "less", "2K"}, false},
		{"size less G", sample(), Condition{"size", "less", "1G"}, true},
		{"size is", sample(), Condition{"size", "is", "2048"}, true},
		{"size is-not", sample(), Condition{"size", "is-not", "2048"}, false},
		{"size is-not other", sample(), Condition{"size", "is-not", "1"}, true},

		// source
		{"source is", sample(), Condition{"source", "is", "smtp"}, true},
		{"source is, value case folded", sample(), Condition{"source", "is", "SMTP"}, true},
		{"source is other", sample(), Condition{"source", "is", "api"}, false},
		{"source is-not", sample(), Condition{"source", "is-not", "smtp"}, false},
		{"source is-not other", sample(), Condition{"source", "is-not", "cluster"}, true},
		{"source rule", fromRule, Condition{"source", "is", "rule"}, true},

		// field and op names are not case-sensitive
		{"field and op case", sample(), Condition{"Sender", "IS", "alice@example.org"}, true},
		{"header prefix case", sample(), Condition{"Header:X-Spam", "Contains", "y"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := compileCondition(tt.c)
			if err != nil {
				t.Fatalf("compile %+v: %v", tt.c, err)
			}
			m := tt.m
			if got := k.holds(&m); got != tt.want {
				t.Errorf("%+v holds = %v, want %v", tt.c, got, tt.want)
			}
			// Through the public API too: a rule with this one condition.
			r := Rule{Name: "r", Conditions: []Condition{tt.c}, Actions: []Action{{Kind: "stop"}}}
			matched := len(Evaluate([]Rule{r}, tt.m).Matched) == 1
			if matched != tt.want {
				t.Errorf("Evaluate matched = %v, want %v", matched, tt.want)
			}
		})
	}
}

func noRcptNoHeader() Message {
	m := sample()
	m.Header = nil
	return m
}

func TestConditionsAreANDed(t *testing.T) {
	both := []Condition{{"sender", "contains", "alice"}, {"size", "greater", "1K"}}
	one := []Condition{{"sender", "contains", "alice"}, {"size", "greater", "1M"}}
	for _, tc := range []struct {
		conds []Condition
		want  bool
	}{{nil, true}, {both, true}, {one, false}} {
		r := Rule{Name: "r", Conditions: tc.conds, Actions: []Action{{Kind: "stop"}}}
		if got := len(Evaluate([]Rule{r}, sample()).Matched) == 1; got != tc.want {
			t.Errorf("conditions %+v matched = %v, want %v", tc.conds, got, tc.want)
		}
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"?", "", false},
		{"?", "a", true},
		{"?", "ab", false},
		{"a*", "abc", true},
		{"*c", "abc", true},
		{"a*c", "ac", true},
		{"a*c", "abxc", true},
		{"a*c", "abcx", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXcYb", false},
		{"*.example.org", "mx.example.org", true},
		{"*.example.org", "example.org", false},
		{"**", "x", true},
		{"?*?", "ab", true},
		{"?*?", "a", false},
		{"grü?e", "grüße", true}, // '?' is one character, not one byte
		{"*ß", "straß", true},
		{"a?c", "a\xffc", true},
		{"a\xffc", "a\xffc", true},
	}
	for _, tt := range tests {
		if got := glob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// A pattern built to make naive backtracking exponential finishes at once.
func TestGlobPathological(t *testing.T) {
	pattern := strings.Repeat("a*", 50) + "b"
	s := strings.Repeat("a", 20000)
	start := time.Now()
	if glob(pattern, s) {
		t.Fatal("matched")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestNewMessage(t *testing.T) {
	env := &mail.Envelope{From: "a@example.org", Size: 42, Source: mail.SourceSubmission,
		Recipients: []*mail.Recipient{{Addr: "b@example.test"}, {Addr: "c@example.net"}}}
	h := Header{{"Subject", "s"}}
	m := NewMessage(env, h)
	if m.Sender != "a@example.org" || m.Size != 42 || m.Source != mail.SourceSubmission ||
		len(m.Recipients) != 2 || m.Recipients[1] != "c@example.net" || m.Header.Get("subject") != "s" {
		t.Errorf("NewMessage = %+v", m)
	}
}
