package rules

import (
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/homing-mail/homing/mail"
)

func TestActions(t *testing.T) {
	tests := []struct {
		name   string
		action Action
		want   Outcome
	}{
		{"reject with code, status and text", Action{Kind: "reject", Value: "550 5.7.1 No thanks"},
			Outcome{Reject: &mail.Error{Code: 550, Status: "5.7.1", Reason: "No thanks"}}},
		{"reject default", Action{Kind: "reject"},
			Outcome{Reject: &mail.Error{Code: 550, Status: "5.7.1", Reason: "Message refused by policy"}}},
		{"reject temporary, status from the class", Action{Kind: "reject", Value: "451 Try later"},
			Outcome{Reject: &mail.Error{Code: 451, Status: "4.7.1", Reason: "Try later"}}},
		{"reject code only", Action{Kind: "reject", Value: "554"},
			Outcome{Reject: &mail.Error{Code: 554, Status: "5.7.1", Reason: "Message refused by policy"}}},
		{"reject text only", Action{Kind: "reject", Value: "No spam here"},
			Outcome{Reject: &mail.Error{Code: 550, Status: "5.7.1", Reason: "No spam here"}}},
		{"reject status without code", Action{Kind: "reject", Value: "5.7.26 DMARC failed"},
			Outcome{Reject: &mail.Error{Code: 550, Status: "5.7.26", Reason: "DMARC failed"}}},
		{"discard", Action{Kind: "discard"}, Outcome{Discard: true}},
		{"redirect, normalised", Action{Kind: "redirect", Value: "Boss@Example.ORG, <sec@example.net>,boss@example.org"},
			Outcome{Redirect: []string{"Boss@example.org", "sec@example.net", "boss@example.org"}}},
		{"forward, duplicates dropped", Action{Kind: "forward", Value: "a@example.net, a@EXAMPLE.net"},
			Outcome{Forward: []string{"a@example.net"}}},
		{"add-header", Action{Kind: "add-header", Value: "X-Flag:yes "},
			Outcome{AddHeaders: []string{"X-Flag: yes"}}},
		{"add-header non-ASCII is encoded", Action{Kind: "add-header", Value: "X-Note: grüße"},
			Outcome{AddHeaders: []string{"X-Note: =?utf-8?q?gr=C3=BC=C3=9Fe?="}}},
		{"folder", Action{Kind: "folder", Value: " Lists/Go "}, Outcome{Folder: "Lists/Go"}},
		{"filter", Action{Kind: "filter", Value: "spamd"}, Outcome{Filters: []string{"spamd"}}},
		{"vacation defaults", Action{Kind: "vacation", Value: "Away until Monday."},
			Outcome{Vacation: &Vacation{Text: "Away until Monday.", Days: 7}}},
		{"vacation params", Action{Kind: "vacation", Value: "Away.", Params: map[string]string{
			"Subject": "Out of office", "from": "Me@Example.test", "DAYS": "3"}},
			Outcome{Vacation: &Vacation{Text: "Away.", Subject: "Out of office", From: "Me@example.test", Days: 3}}},
		{"stop", Action{Kind: "stop"}, Outcome{}},
		{"kind case", Action{Kind: "Discard"}, Outcome{Discard: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Rule{Name: "r", Actions: []Action{tt.action}}
			want := tt.want
			want.Matched = []string{"r"}
			got := Evaluate([]Rule{r}, sample())
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Evaluate = %+v\nwant       %+v", describe(got), describe(want))
			}
			// Every action here is valid in the account scope, or in
			// the server scope (filter): Compile agrees with Evaluate.
			scope := ScopeAccount
			if tt.action.Kind == "filter" {
				scope = ScopeServer
			}
			s, err := Compile([]Rule{r}, scope)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := s.Evaluate(sample()); !reflect.DeepEqual(got, want) {
				t.Errorf("Set.Evaluate = %+v", describe(got))
			}
		})
	}
}

// describe makes an Outcome's pointers readable in failures.
func describe(o Outcome) map[string]any {
	m := map[string]any{"Discard": o.Discard, "Redirect": o.Redirect, "Forward": o.Forward,
		"AddHeaders": o.AddHeaders, "Folder": o.Folder, "Filters": o.Filters, "Matched": o.Matched}
	if o.Reject != nil {
		m["Reject"] = *o.Reject
	}
	if o.Vacation != nil {
		m["Vacation"] = *o.Vacation
	}
	return m
}

func rule(name string, prio int, actions ...Action) Rule {
	return Rule{Name: name, Priority: prio, Actions: actions}
}

func TestPriorityOrder(t *testing.T) {
	rules := []Rule{
		rule("low", 1, Action{Kind: "filter", Value: "low"}),
		rule("b-high", 10, Action{Kind: "filter", Value: "b"}),
		rule("a-high", 10, Action{Kind: "filter", Value: "a"}),
		rule("negative", -5, Action{Kind: "filter", Value: "neg"}),
		rule("mid", 5, Action{Kind: "filter", Value: "mid"}),
	}
	in := append([]Rule(nil), rules...)
	o := Evaluate(rules, sample())
	wantOrder := []string{"a-high", "b-high", "mid", "low", "negative"}
	if !reflect.DeepEqual(o.Matched, wantOrder) {
		t.Errorf("Matched = %q, want %q", o.Matched, wantOrder)
	}
	if !reflect.DeepEqual(o.Filters, []string{"a", "b", "mid", "low", "neg"}) {
		t.Errorf("Filters = %q: actions not applied in rule order", o.Filters)
	}
	if !reflect.DeepEqual(rules, in) {
		t.Error("Evaluate reordered its argument")
	}
	s, err := Compile(rules, ScopeCluster)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Evaluate(sample()); !reflect.DeepEqual(got, o) {
		t.Errorf("Set.Evaluate = %+v, Evaluate = %+v", got, o)
	}
}

func TestStop(t *testing.T) {
	rules := []Rule{
		rule("first", 3, Action{Kind: "add-header", Value: "X-A: 1"}),
		rule("stopper", 2, Action{Kind: "add-header", Value: "X-B: 2"}, Action{Kind: "stop"},
			Action{Kind: "add-header", Value: "X-Never: after stop"}),
		rule("after", 1, Action{Kind: "add-header", Value: "X-C: 3"}),
	}
	o := Evaluate(rules, sample())
	if !reflect.DeepEqual(o.Matched, []string{"first", "stopper"}) {
		t.Errorf("Matched = %q", o.Matched)
	}
	if !reflect.DeepEqual(o.AddHeaders, []string{"X-A: 1", "X-B: 2"}) {
		t.Errorf("AddHeaders = %q", o.AddHeaders)
	}

	// A stop in a rule that does not match stops nothing.
	rules[1].Conditions = []Condition{{"sender", "is", "nobody@example.org"}}
	o = Evaluate(rules, sample())
	if !reflect.DeepEqual(o.Matched, []string{"first", "after"}) {
		t.Errorf("non-matching stop: Matched = %q", o.Matched)
	}
}

func TestRejectIsFinalAndClearsTheRest(t *testing.T) {
	rules := []Rule{
		rule("tag", 3, Action{Kind: "add-header", Value: "X-A: 1"}, Action{Kind: "forward", Value: "copy@example.net"}),
		rule("refuse", 2, Action{Kind: "reject", Value: "550 5.7.1 Go away"}, Action{Kind: "folder", Value: "never"}),
		rule("after", 1, Action{Kind: "filter", Value: "x"}),
	}
	o := Evaluate(rules, sample())
	want := Outcome{Reject: &mail.Error{Code: 550, Status: "5.7.1", Reason: "Go away"}, Matched: []string{"tag", "refuse"}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("Outcome = %+v", describe(o))
	}
	if o.Keep() || o.Recipients([]string{"bob@example.test"}) != nil {
		t.Error("a rejected message is kept or has recipients")
	}
}

func TestDiscardIsFinalAndKeepsForwards(t *testing.T) {
	rules := []Rule{
		rule("fwd", 2, Action{Kind: "forward", Value: "other@example.net"}, Action{Kind: "discard"},
			Action{Kind: "folder", Value: "never"}),
		rule("after", 1, Action{Kind: "forward", Value: "late@example.net"}),
	}
	o := Evaluate(rules, sample())
	want := Outcome{Discard: true, Forward: []string{"other@example.net"}, Matched: []string{"fwd"}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("Outcome = %+v", describe(o))
	}
	if got := o.Recipients([]string{"bob@example.test"}); !reflect.DeepEqual(got, []string{"other@example.net"}) {
		t.Errorf("Recipients = %q, want only the forward (forward without a copy)", got)
	}
}

func TestCombiningRules(t *testing.T) {
	rules := []Rule{
		rule("r1", 3, Action{Kind: "folder", Value: "First"}, Action{Kind: "filter", Value: "f1"},
			Action{Kind: "vacation", Value: "one"}, Action{Kind: "forward", Value: "a@example.net"},
			Action{Kind: "add-header", Value: "X-A: 1"}),
		rule("r2", 2, Action{Kind: "folder", Value: "Second"}, Action{Kind: "filter", Value: "f1"},
			Action{Kind: "filter", Value: "f2"}, Action{Kind: "vacation", Value: "two"},
			Action{Kind: "forward", Value: "a@example.net, b@example.net"}, Action{Kind: "add-header", Value: "X-A: 1"},
			Action{Kind: "redirect", Value: "r@example.net"}),
		rule("r3", 1, Action{Kind: "redirect", Value: "s@example.net,r@example.net"}),
	}
	o := Evaluate(rules, sample())
	want := Outcome{
		Folder:     "First",
		Filters:    []string{"f1", "f2"},
		Vacation:   &Vacation{Text: "one", Days: 7},
		Forward:    []string{"a@example.net", "b@example.net"},
		AddHeaders: []string{"X-A: 1"},
		Redirect:   []string{"r@example.net", "s@example.net"},
		Matched:    []string{"r1", "r2", "r3"},
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("Outcome = %+v\nwant      %+v", describe(o), describe(want))
	}
}

func TestOutcomeRecipients(t *testing.T) {
	orig := []string{"bob@example.test", "carol@example.test"}
	tests := []struct {
		name string
		o    Outcome
		keep bool
		want []string
	}{
		{"nothing", Outcome{}, true, orig},
		{"forward adds", Outcome{Forward: []string{"x@example.net", "bob@example.test"}}, true,
			[]string{"bob@example.test", "carol@example.test", "x@example.net"}},
		{"redirect replaces", Outcome{Redirect: []string{"x@example.net"}, Forward: []string{"y@example.net"}}, false,
			[]string{"x@example.net", "y@example.net"}},
		{"discard drops", Outcome{Discard: true}, false, nil},
		{"reject drops everything", Outcome{Reject: defaultReject(), Forward: []string{"y@example.net"}}, false, nil},
	}
	for _, tt := range tests {
		if got := tt.o.Keep(); got != tt.keep {
			t.Errorf("%s: Keep = %v", tt.name, got)
		}
		if got := tt.o.Recipients(orig); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Recipients = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestEvaluateLenient(t *testing.T) {
	rules := []Rule{
		{Name: "bad-field", Priority: 9, Conditions: []Condition{{"colour", "is", "red"}},
			Actions: []Action{{Kind: "discard"}}},
		{Name: "bad-op", Priority: 8, Conditions: []Condition{{"sender", "resembles", "x"}},
			Actions: []Action{{Kind: "discard"}}},
		{Name: "bad-actions", Priority: 7, Actions: []Action{
			{Kind: "teleport"}, {Kind: "forward", Value: "not an address"},
			{Kind: "add-header", Value: "X-Inject: a\r\nBcc: evil@example.net"},
			{Kind: "filter", Value: "ok"}}},
		{Name: "bad-reject", Priority: 6, Actions: []Action{{Kind: "reject", Value: "250 fine"}}},
	}
	o := Evaluate(rules, sample())
	want := Outcome{Reject: defaultReject(), Matched: []string{"bad-actions", "bad-reject"}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("Outcome = %+v", describe(o))
	}
	// Without the reject the valid action of bad-actions is applied.
	o = Evaluate(rules[:3], sample())
	if !reflect.DeepEqual(o.Filters, []string{"ok"}) || o.Forward != nil || o.AddHeaders != nil {
		t.Errorf("Outcome = %+v", describe(o))
	}
}

func TestEvaluateDeterministicAndIsolated(t *testing.T) {
	rules := []Rule{
		rule("same", 1, Action{Kind: "folder", Value: "one"}),
		rule("same", 1, Action{Kind: "folder", Value: "two"}),
		rule("rej", 0, Action{Kind: "forward", Value: "x@example.net"}),
	}
	first := Evaluate(rules, sample())
	for i := 0; i < 20; i++ {
		if got := Evaluate(rules, sample()); !reflect.DeepEqual(got, first) {
			t.Fatalf("run %d: %+v, first %+v", i, got, first)
		}
	}
	if first.Folder != "one" {
		t.Errorf("equal rules did not keep their order: folder %q", first.Folder)
	}

	s, err := Compile([]Rule{rule("r", 0, Action{Kind: "reject", Value: "550 5.7.1 no"}, Action{Kind: "stop"}),
		rule("v", 1, Action{Kind: "vacation", Value: "away"}, Action{Kind: "forward", Value: "f@example.net"})}, ScopeAccount)
	if err != nil {
		t.Fatal(err)
	}
	o := s.Evaluate(sample())
	if o.Reject == nil {
		t.Fatal("no reject")
	}
	o.Reject.Reason = "changed"
	o2 := s.Evaluate(sample())
	if o2.Reject.Reason != "no" {
		t.Errorf("changing an Outcome changed the Set: %q", o2.Reject.Reason)
	}
	s2, _ := Compile([]Rule{rule("v", 1, Action{Kind: "vacation", Value: "away"}, Action{Kind: "forward", Value: "f@example.net"})}, ScopeAccount)
	o = s2.Evaluate(sample())
	o.Vacation.Text = "changed"
	o.Forward[0] = "changed"
	o = s2.Evaluate(sample())
	if o.Vacation.Text != "away" || o.Forward[0] != "f@example.net" {
		t.Errorf("changing an Outcome changed the Set: %+v", describe(o))
	}
}

func TestNilSet(t *testing.T) {
	var s *Set
	if s.Len() != 0 {
		t.Error("nil Set has rules")
	}
	if o := s.Evaluate(sample()); !reflect.DeepEqual(o, Outcome{}) || !o.Keep() {
		t.Errorf("nil Set outcome = %+v", describe(o))
	}
	s, err := Compile(nil, ScopeServer)
	if err != nil || s.Len() != 0 {
		t.Errorf("Compile(nil) = %v, %v", s, err)
	}
}

func TestCompileErrors(t *testing.T) {
	_, err := Compile([]Rule{rule("a", 1, Action{Kind: "stop"}), rule("a", 2, Action{Kind: "stop"})}, ScopeServer)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Rule != "a" || err.Error() != `rule "a": another rule has the same name` {
		t.Errorf("duplicate names: %v", err)
	}
	_, err = Compile([]Rule{rule("ok", 1, Action{Kind: "stop"}), rule("f", 1, Action{Kind: "folder", Value: "x"})}, ScopeServer)
	if !errors.Is(err, ErrInvalidRule) || !errors.As(err, &ve) || ve.Rule != "f" {
		t.Errorf("invalid rule: %v", err)
	}
	s, err := Compile([]Rule{rule("a", 1, Action{Kind: "stop"}), rule("b", 2, Action{Kind: "stop"})}, ScopeServer)
	if err != nil || s.Len() != 2 {
		t.Errorf("Compile = %v, %v", s, err)
	}
}

func TestRuleJSON(t *testing.T) {
	const doc = `{"name":"away","priority":5,
		"conditions":[{"field":"header:List-Id","op":"not-matches","value":"*"}],
		"actions":[{"kind":"vacation","value":"I am away.","params":{"days":"3"}},{"kind":"stop","value":""}]}`
	var r Rule
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		t.Fatal(err)
	}
	want := Rule{Name: "away", Priority: 5,
		Conditions: []Condition{{Field: "header:List-Id", Op: "not-matches", Value: "*"}},
		Actions:    []Action{{Kind: "vacation", Value: "I am away.", Params: map[string]string{"days": "3"}}, {Kind: "stop"}}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("decoded %+v", r)
	}
	if err := r.Validate(ScopeAccount); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Rule
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("round trip: %s -> %+v (%v)", b, back, err)
	}
}

// A Set is shared by every session of a node.
func TestSetConcurrentUse(t *testing.T) {
	s, err := Compile([]Rule{
		{Name: "spam", Priority: 2, Conditions: []Condition{{"header:X-Spam", "is", "yes"}},
			Actions: []Action{{Kind: "add-header", Value: "X-Tag: spam"}, {Kind: "filter", Value: "quarantine"}}},
		{Name: "big", Priority: 1, Conditions: []Condition{{"size", "greater", "1K"}},
			Actions: []Action{{Kind: "reject", Value: "552 5.3.4 Too big"}}},
	}, ScopeCluster)
	if err != nil {
		t.Fatal(err)
	}
	want := s.Evaluate(sample())
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if got := s.Evaluate(sample()); !reflect.DeepEqual(got, want) {
					errs <- "different outcome"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if want.Reject == nil || want.Reject.Code != 552 || !reflect.DeepEqual(want.Matched, []string{"spam", "big"}) {
		t.Errorf("outcome %+v", describe(want))
	}
}
