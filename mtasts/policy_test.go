package mtasts

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

func TestParsePolicy(t *testing.T) {
	good := []struct {
		name, text string
		want       Policy
	}{
		{"RFC 8461 example", "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
			Policy{Mode: ModeEnforce, MX: []string{"mail.example.com", "*.example.net", "backupmx.example.com"}, MaxAge: 604800 * time.Second}},
		{"LF, no final break, any order", "mode: testing\nmx: MX.Example.COM.\nmax_age: 86400\nversion: STSv1",
			Policy{Mode: ModeTesting, MX: []string{"mx.example.com"}, MaxAge: 86400 * time.Second}},
		{"none needs no mx", "version: STSv1\nmode: none\nmax_age: 0\n", Policy{Mode: ModeNone, MaxAge: 0}},
		{"spaces around values, blank lines, extensions", "version:STSv1\n\nmode:   enforce  \nmx:\tmx.example.com\nmax_age: 31557600\nx-ext.field_1: any value é\n\n",
			Policy{Mode: ModeEnforce, MX: []string{"mx.example.com"}, MaxAge: MaxAge}},
		{"the first of a repeated field", "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 5\nmax_age: 9\n",
			Policy{Mode: ModeTesting, MX: []string{"a.example"}, MaxAge: 5 * time.Second}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode != tc.want.Mode || p.MaxAge != tc.want.MaxAge || strings.Join(p.MX, ",") != strings.Join(tc.want.MX, ",") {
				t.Fatalf("got %+v, want %+v", p, tc.want)
			}
			again, err := ParsePolicy(p.String())
			if err != nil || again.String() != p.String() {
				t.Fatalf("String does not parse back: %q %v", p.String(), err)
			}
		})
	}
	bad := map[string]string{
		"empty":              "",
		"no version":         "mode: enforce\nmx: a.example\nmax_age: 5\n",
		"wrong version":      "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 5\n",
		"no mode":            "version: STSv1\nmx: a.example\nmax_age: 5\n",
		"unknown mode":       "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 5\n",
		"no max_age":         "version: STSv1\nmode: enforce\nmx: a.example\n",
		"negative max_age":   "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -5\n",
		"max_age too large":  "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
		"max_age 11 digits":  "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 00000000005\n",
		"enforce without mx": "version: STSv1\nmode: enforce\nmax_age: 5\n",
		"no colon":           "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 5\n",
		"bad mx":             "version: STSv1\nmode: enforce\nmx: a_b.example\nmax_age: 5\n",
		"wildcard in middle": "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 5\n",
		"U-label mx":         "version: STSv1\nmode: enforce\nmx: bücher.example\nmax_age: 5\n",
		"bare wildcard":      "version: STSv1\nmode: enforce\nmx: *.\nmax_age: 5\n",
		"control character":  "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 5\nx: a\x01b\n",
		"HTML":               "<html><body>not found</body></html>",
	}
	for name, text := range bad {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePolicy(text)
			if !errors.Is(err, ErrPolicySyntax) || p != nil {
				t.Fatalf("got %+v, %v; want ErrPolicySyntax", p, err)
			}
			if mail.IsTemporary(err) {
				t.Fatal("a malformed policy is a temporary error")
			}
		})
	}
}

func TestPolicyMatch(t *testing.T) {
	p := &Policy{Mode: ModeEnforce, MX: []string{"mail.example.com", "*.example.net"}}
	for host, want := range map[string]bool{
		"mail.example.com":   true,
		"MAIL.example.com.":  true,
		"mx1.example.net":    true,
		"example.net":        false,
		"a.b.example.net":    false,
		"other.example.com":  false,
		"mail.example.com.x": false,
		".example.net":       false,
	} {
		if got := p.Match(host); got != want {
			t.Errorf("Match(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestParseRecord(t *testing.T) {
	good := map[string]string{
		"v=STSv1; id=20160831085700Z;":           "20160831085700Z",
		"v=STSv1;id=abc":                         "abc",
		"v=STSv1 ; id = 1 ; ext=x":               "1",
		"v=STSv1; id=first; id=second":           "first",
		"v=STSv1; id=" + strings.Repeat("a", 32): strings.Repeat("a", 32),
	}
	for txt, id := range good {
		r, err := ParseRecord(txt)
		if err != nil || r.ID != id {
			t.Errorf("ParseRecord(%q) = %+v, %v; want id %s", txt, r, err, id)
		}
	}
	for _, txt := range []string{
		"v=STSv1",
		"v=STSv1;",
		"v=STSv1; id=",
		"v=STSv1; id=has-dash",
		"v=STSv1; id=" + strings.Repeat("a", 33),
		"v=STSv2; id=1",
		" v=STSv1; id=1",
		"v=STSv1;; id=1",
		"v=STSv1; id=1; v=STSv1",
		"v=STSv1; id=1; ext=a=b",
		"v=STSv1; junk",
		"id=1; v=STSv1",
	} {
		if _, err := ParseRecord(txt); !errors.Is(err, ErrRecordSyntax) || mail.IsTemporary(err) {
			t.Errorf("ParseRecord(%q): %v, want a permanent ErrRecordSyntax", txt, err)
		}
	}
}

// FuzzParse: no input makes the parsers panic, and what parses prints
// back to the same policy.
func FuzzParse(f *testing.F) {
	f.Add("version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n")
	f.Add("v=STSv1; id=20160831085700Z;")
	f.Add("mode: none\r\nversion: STSv1\r\nmax_age: 0")
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParsePolicy(s); err == nil {
			again, err := ParsePolicy(p.String())
			if err != nil || again.String() != p.String() {
				t.Fatalf("%q parses as %q, which does not parse back: %v", s, p.String(), err)
			}
			for _, mx := range p.MX {
				p.Match(mx)
			}
		}
		ParseRecord(s)
	})
}
