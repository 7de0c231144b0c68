package rules

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		"From: a@example.org\r\nSubject: x\r\n\r\nbody",
		"Subject: a\r\n b\r\n\tc\r\n\r\n",
		" orphan\r\nX: y\n\n",
		"From a@b Mon Jan 1 00:00:00 2024\nX: y",
		"Bad Name: x\r\n",
		"X: a\rb\x00c\r\r\n",
		":\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := ParseHeader(raw)
		if len(h) > MaxHeaderFields {
			t.Fatalf("%d fields", len(h))
		}
		for _, fl := range h {
			if !validFieldName(fl.Name) {
				t.Fatalf("bad name %q", fl.Name)
			}
			if strings.ContainsAny(fl.Value, "\r\n\x00") {
				t.Fatalf("value %q holds CR, LF or NUL", fl.Value)
			}
			if fl.Value != strings.Trim(fl.Value, " \t") {
				t.Fatalf("value %q not trimmed", fl.Value)
			}
		}
		// Parsing is a function of its input.
		h2, err2 := ParseHeader(raw)
		if !reflect.DeepEqual(h, h2) || (err == nil) != (err2 == nil) {
			t.Fatal("not deterministic")
		}
		// A header written back out parses to the same fields.
		if err == nil && len(h) > 0 {
			var b bytes.Buffer
			for _, fl := range h {
				b.WriteString(fl.Name + ": " + fl.Value + "\r\n")
			}
			b.WriteString("\r\n")
			back, berr := ParseHeader(b.Bytes())
			if berr == nil && !reflect.DeepEqual(back, h) {
				t.Fatalf("round trip: %q -> %q", h, back)
			}
		}
	})
}

func FuzzEvaluate(f *testing.F) {
	f.Add("sender", "is", "a@example.org", "reject", "550 5.7.1 no", "a@example.org", "Subject: x\r\n\r\n", int64(10), "smtp")
	f.Add("header:X-Spam", "matches", "y*s", "forward", "b@example.org, c@example.org", "", "X-Spam: yes\r\n", int64(0), "rule")
	f.Add("size", "greater", "1K", "add-header", "X-A: b", "x@y.example", "", int64(5000), "api")
	f.Add("subject", "contains", "=?", "vacation", "away", "x@y.example", "Subject: =?utf-8?q?a?=\r\n", int64(1), "dsn")
	f.Add("recipient", "not-matches", "*?*", "folder", "Junk", "", "", int64(-1), "")
	f.Fuzz(func(t *testing.T, field, op, value, kind, avalue, sender, rawHeader string, size int64, source string) {
		h, _ := ParseHeader([]byte(rawHeader))
		m := Message{
			Sender:     sender,
			Recipients: []string{sender, value, "b@example.org"},
			Header:     h,
			Size:       size,
			Source:     mail.Source(source),
		}
		rules := []Rule{
			{Name: "fuzz", Priority: 1, Conditions: []Condition{{field, op, value}},
				Actions: []Action{{Kind: kind, Value: avalue}, {Kind: "forward", Value: avalue}}},
			{Name: "always", Actions: []Action{{Kind: kind, Value: value}}},
			{Name: "fuzz", Priority: 1, Conditions: []Condition{{"header:" + field, op, value}},
				Actions: []Action{{Kind: "add-header", Value: avalue}}},
		}
		o := Evaluate(rules, m)
		if o2 := Evaluate(rules, m); !reflect.DeepEqual(o, o2) {
			t.Fatalf("not deterministic: %+v vs %+v", o, o2)
		}
		for _, name := range o.Matched {
			if name != "fuzz" && name != "always" {
				t.Fatalf("matched %q", name)
			}
		}
		if o.Reject != nil && (o.Redirect != nil || o.Forward != nil || o.Folder != "" || o.Vacation != nil) {
			t.Fatalf("reject with other actions: %+v", o)
		}
		for _, line := range o.AddHeaders {
			if strings.ContainsAny(line, "\r\n") || len(line) > 998 {
				t.Fatalf("header line %q", line)
			}
		}
		for _, a := range append(append([]string(nil), o.Redirect...), o.Forward...) {
			if got, err := mail.ParseAddress(a); err != nil || got != a {
				t.Fatalf("recipient %q not normalised (%v)", a, err)
			}
		}
		// Rules that validate compile, and the compiled set agrees.
		for _, scope := range allScopes {
			ok := true
			for _, r := range rules {
				if r.Validate(scope) != nil {
					ok = false
				}
			}
			_, err := Compile(rules, scope)
			if err == nil {
				// Two rules are named "fuzz": Compile must refuse them.
				t.Fatalf("duplicate names compiled in %s", scope)
			}
			if ok {
				s, err := Compile(rules[:2], scope)
				if err != nil {
					t.Fatalf("valid rules do not compile: %v", err)
				}
				if got, want := s.Evaluate(m), Evaluate(rules[:2], m); !reflect.DeepEqual(got, want) {
					t.Fatalf("Set.Evaluate %+v != Evaluate %+v", got, want)
				}
			}
		}
	})
}

func FuzzAutoReply(f *testing.F) {
	f.Add("me@example.test", "bob@example.net", "", "away", "Subject: hi\r\nMessage-ID: <a@b>\r\n\r\n", "id@x")
	f.Add("Jürgen <me@example.test>", "b\r\nBcc: x@y", "s\r\nX: y", "Grüße\r\n.\r\n", "Subject: =?utf-8?q?x?=\r\nReferences: <a@b> <c@d>\r\nMessage-ID: <e@f>\r\n", "<a b>")
	f.Fuzz(func(t *testing.T, from, to, subject, text, rawOrig, msgID string) {
		orig, _ := ParseHeader([]byte(rawOrig))
		msg := AutoReplyMessage(from, to, subject, text, orig, time.Unix(0, 0).UTC(), msgID)
		for i, c := range msg {
			if c == '\n' && (i == 0 || msg[i-1] != '\r') {
				t.Fatalf("bare LF in %q", msg)
			}
			if c == '\r' && (i+1 == len(msg) || msg[i+1] != '\n') {
				t.Fatalf("bare CR in %q", msg)
			}
		}
		head, _, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
		if !ok {
			t.Fatalf("no header end in %q", msg)
		}
		for _, line := range bytes.Split(msg, []byte("\r\n")) {
			if len(line) > 998 {
				t.Fatalf("line of %d bytes", len(line))
			}
		}
		h, err := ParseHeader(append(head, "\r\n\r\n"...))
		if err != nil {
			t.Fatalf("own header does not parse: %v\n%q", err, head)
		}
		seen := map[string]int{}
		for _, fl := range h {
			seen[strings.ToLower(fl.Name)]++
		}
		for name, n := range seen {
			if n > 1 {
				t.Fatalf("field %s appears %d times:\n%s", name, n, head)
			}
		}
		want := []string{"from", "to", "date", "subject", "auto-submitted", "x-auto-response-suppress",
			"mime-version", "content-type", "content-transfer-encoding", "message-id", "in-reply-to", "references"}
		if len(seen) > len(want) {
			t.Fatalf("unexpected fields: %v", seen)
		}
		for name := range seen {
			found := false
			for _, w := range want {
				found = found || w == name
			}
			if !found {
				t.Fatalf("field %q injected:\n%s", name, head)
			}
		}
		if h.Get("Auto-Submitted") != "auto-replied" {
			t.Fatalf("Auto-Submitted = %q", h.Get("Auto-Submitted"))
		}
	})
}
