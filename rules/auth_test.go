package rules

import "testing"

func TestAuthResultsReadOnlyTheClustersField(t *testing.T) {
	h, err := ParseHeader([]byte("Authentication-Results: mx.example.test;\r\n\tspf=fail smtp.mailfrom=x.test;\r\n\tdkim=fail header.d=x.test;\r\n\tdkim=pass header.d=y.test;\r\n\tdmarc=fail header.from=x.test policy.dmarc=quarantine\r\n" +
		"Authentication-Results: upstream.test; spf=pass smtp.mailfrom=x.test\r\n" +
		"Subject: s\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := AuthResults(h, "MX.example.test")
	want := map[string]string{"spf": "fail", "dkim": "pass", "dmarc": "fail", "dmarc.policy": "quarantine"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if !Quarantined(h, "mx.example.test") {
		t.Error("not quarantined")
	}
	if r := AuthResults(h, "other.test"); r != nil {
		t.Errorf("another authserv-id: %v, want nil", r)
	}

	rs, err := Compile([]Rule{{Name: "junk-spf", Conditions: []Condition{{Field: "auth.spf", Op: "is", Value: "fail"}},
		Actions: []Action{{Kind: ActionFolder, Value: "Junk"}}}}, ScopeAccount)
	if err != nil {
		t.Fatal(err)
	}
	if o := rs.Evaluate(Message{Auth: got}); o.Folder != "Junk" {
		t.Errorf("auth.spf is fail did not match: %+v", o)
	}
	if o := rs.Evaluate(Message{Auth: map[string]string{"spf": "pass"}}); o.Folder != "" {
		t.Errorf("auth.spf is fail matched a pass: %+v", o)
	}
	if _, err := Compile([]Rule{{Name: "x", Conditions: []Condition{{Field: "auth.arc", Op: "is", Value: "pass"}}}}, ScopeAccount); err == nil {
		t.Error("auth.arc was accepted")
	}
}
