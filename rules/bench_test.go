package rules

import (
	"fmt"
	"strings"
	"testing"
)

// benchRules is a plausible server rule set: 20 rules over every field.
func benchRules() []Rule {
	var rs []Rule
	for i := 0; i < 5; i++ {
		rs = append(rs,
			Rule{Name: fmt.Sprintf("block-%d", i), Priority: 10,
				Conditions: []Condition{{"sender", "matches", fmt.Sprintf("*@spam%d.example", i)}},
				Actions:    []Action{{Kind: "reject", Value: "550 5.7.1 Blocked"}}},
			Rule{Name: fmt.Sprintf("tag-%d", i), Priority: 5,
				Conditions: []Condition{{"header:X-Spam-Level", "contains", strings.Repeat("*", 5+i)}, {"source", "is", "smtp"}},
				Actions:    []Action{{Kind: "add-header", Value: "X-Tagged: yes"}}},
			Rule{Name: fmt.Sprintf("big-%d", i), Priority: 3,
				Conditions: []Condition{{"size", "greater", fmt.Sprintf("%dM", 10+i)}, {"recipient", "matches", "*@lists.example"}},
				Actions:    []Action{{Kind: "reject", Value: "552 5.3.4 Too big"}}},
			Rule{Name: fmt.Sprintf("filter-%d", i), Priority: 1,
				Conditions: []Condition{{"subject", "not-contains", fmt.Sprintf("[internal-%d]", i)}},
				Actions:    []Action{{Kind: "filter", Value: "spamd"}}},
		)
	}
	return rs
}

func benchMessage(b *testing.B) Message {
	raw := "Received: from mx.example.net by homing.example.test\r\n" +
		"Received: from client.example.net by mx.example.net\r\n" +
		"From: Alice <alice@example.net>\r\nTo: bob@example.test\r\n" +
		"Subject: =?utf-8?q?Quarterly_report_Gr=C3=BC=C3=9Fe?=\r\n" +
		"Message-ID: <123@example.net>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n" +
		"X-Spam-Level: **\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
	h, err := ParseHeader([]byte(raw))
	if err != nil {
		b.Fatal(err)
	}
	return Message{Sender: "alice@example.net", Recipients: []string{"bob@example.test", "carol@example.test"},
		Header: h, Size: 20000, Source: "smtp"}
}

func BenchmarkSetEvaluate(b *testing.B) {
	s, err := Compile(benchRules(), ScopeServer)
	if err != nil {
		b.Fatal(err)
	}
	m := benchMessage(b)
	b.ReportAllocs()
	for b.Loop() {
		s.Evaluate(m)
	}
}

func BenchmarkEvaluateUncompiled(b *testing.B) {
	rs := benchRules()
	m := benchMessage(b)
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(rs, m)
	}
}

func BenchmarkParseHeader(b *testing.B) {
	raw := []byte("Received: from mx.example.net by homing.example.test\r\n\twith ESMTP id 1234\r\n" +
		"From: Alice <alice@example.net>\r\nTo: bob@example.test\r\nSubject: Quarterly report\r\n" +
		"Message-ID: <123@example.net>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("body line\r\n", 1000))
	b.ReportAllocs()
	for b.Loop() {
		ParseHeader(raw)
	}
}
