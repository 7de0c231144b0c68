package inbound

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/homing-mail/homing/resolve"
	"github.com/homing-mail/homing/testkit/dnstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// spfZone has a domain per SPF result of RFC 7208 §2.6, for a client at
// 127.0.0.2.
func spfZone() dnstest.Zone {
	z := dnstest.Zone{
		"pass.test":                {`TXT "v=spf1 ip4:127.0.0.2 -all"`},
		"fail.test":                {`TXT "v=spf1 ip4:127.0.0.99 -all"`},
		"softfail.test":            {`TXT "v=spf1 ip4:127.0.0.99 ~all"`},
		"neutral.test":             {`TXT "v=spf1 ?all"`},
		"none.test":                {"A 127.0.0.1", `TXT "not spf"`},
		"temperror.test":           {`TXT "v=spf1 -all"`},
		"permerror.test":           {`TXT "v=spf1 ip4:300.1.2.3 -all"`},
		"two.test":                 {`TXT "v=spf1 -all"`, `TXT "v=spf1 +all"`},
		"unknown.test":             {`TXT "v=spf1 frobnicate:x -all"`},
		"include.test":             {`TXT "v=spf1 include:pass.test -all"`},
		"includefail.test":         {`TXT "v=spf1 include:fail.test ~all"`},
		"includenone.test":         {`TXT "v=spf1 include:none.test -all"`},
		"redirect.test":            {`TXT "v=spf1 redirect=pass.test"`},
		"redirectfail.test":        {`TXT "v=spf1 redirect=fail.test"`},
		"a.test":                   {`TXT "v=spf1 a -all"`, "A 127.0.0.2"},
		"mx.test":                  {`TXT "v=spf1 mx -all"`, "MX 10 mail.mx.test."},
		"mail.mx.test":             {"A 127.0.0.2"},
		"ip6.test":                 {`TXT "v=spf1 ip6:2001:db8::/32 -all"`},
		"exists.test":              {`TXT "v=spf1 exists:%{i}.ok.exists.test -all"`},
		"127.0.0.2.ok.exists.test": {"A 127.0.0.1"},
	}
	var eleven, ten []string
	for i := 1; i <= 11; i++ {
		name := fmt.Sprintf("l%d.limit.test", i)
		z[name] = []string{`TXT "v=spf1 -all"`}
		eleven = append(eleven, "include:"+name)
		if i <= 10 {
			ten = append(ten, "include:"+name)
		}
	}
	// RFC 7208 §4.6.4: at most 10 terms that query DNS.
	z["eleven.limit.test"] = []string{`TXT "v=spf1 ` + strings.Join(eleven, " ") + ` ip4:127.0.0.2 -all"`}
	z["ten.limit.test"] = []string{`TXT "v=spf1 ` + strings.Join(ten, " ") + ` ip4:127.0.0.2 -all"`}
	return z
}

var spfCases = []struct {
	domain, want string
}{
	{"pass.test", "pass"},
	{"fail.test", "fail"},
	{"softfail.test", "softfail"},
	{"neutral.test", "neutral"},
	{"none.test", "none"},
	{"nxdomain.test", "none"},
	{"temperror.test", "temperror"},
	{"permerror.test", "permerror"},
	{"two.test", "permerror"},
	{"unknown.test", "permerror"},
	{"include.test", "pass"},
	{"includefail.test", "softfail"},
	{"includenone.test", "permerror"},
	{"redirect.test", "pass"},
	{"redirectfail.test", "fail"},
	{"a.test", "pass"},
	{"mx.test", "pass"},
	{"ip6.test", "fail"},
	{"exists.test", "pass"},
	{"ten.limit.test", "pass"},
	{"eleven.limit.test", "permerror"},
}

func startSPFZone(t *testing.T) (*dnstest.Server, *resolve.Resolver) {
	t.Helper()
	srv := dnstest.Start(t, spfZone())
	srv.Fail("temperror.test", 2) // SERVFAIL
	r, err := resolve.New(resolve.Config{Server: srv.Addr(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return srv, r
}

// TestSPFAgreesWithPyspf runs each case through Homing's check and
// through pyspf (Debian's python3-spf) on the same loopback zone: both
// must give the expected result.
func TestSPFAgreesWithPyspf(t *testing.T) {
	srv, r := startSPFZone(t)
	c := New(Config{AuthServID: "mx.example.test", Resolver: r})
	ip := netip.MustParseAddr("127.0.0.2")

	var domains []string
	for _, tc := range spfCases {
		domains = append(domains, tc.domain)
	}
	py := pyspf(t, srv, "127.0.0.2", domains)

	for _, tc := range spfCases {
		got := c.checkSPF(context.Background(), Origin{IP: ip, HELO: "client.test", MailFrom: "someone@" + tc.domain})
		if string(got.result) != tc.want {
			t.Errorf("%s: Homing says %s, want %s", tc.domain, got.result, tc.want)
		}
		if py[tc.domain] != tc.want {
			t.Errorf("%s: pyspf says %s, want %s", tc.domain, py[tc.domain], tc.want)
		}
	}
	// The null sender: the HELO identity (RFC 7208 §2.4).
	got := c.checkSPF(context.Background(), Origin{IP: ip, HELO: "pass.test", MailFrom: ""})
	if got.result != "pass" || !got.helo || got.domain != "pass.test" {
		t.Errorf("null sender, HELO pass.test: %+v", got)
	}
}

// pyspf returns pyspf's result for a sender at each domain.
func pyspf(t *testing.T, srv *dnstest.Server, ip string, domains []string) map[string]string {
	t.Helper()
	in, _ := json.Marshal(domains)
	script := srv.PythonResolver() + `
import json, sys, spf
out = {}
for d in json.loads(sys.stdin.read()):
    res, _expl = spf.check2(i=` + "'" + ip + "'" + `, s="someone@" + d, h="client.test")
    out[d] = res
print(json.dumps(out))
`
	cmd := exec.Command("/usr/bin/python3", "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pyspf: %v\n%s (.ci/run installs python3-spf)", err, stderr.Bytes())
	}
	res := map[string]string{}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("pyspf output %q: %v", out, err)
	}
	return res
}
