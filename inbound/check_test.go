package inbound

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/resolve"
	"github.com/homing-mail/homing/testkit/dnstest"
)

const authserv = "mx.example.test"

func message(from string, extra ...string) string {
	return strings.Join(extra, "") +
		"From: " + from + "\r\n" +
		"To: alice@example.test\r\n" +
		"Subject: test\r\n" +
		"Date: Mon, 1 Dec 2026 10:00:00 +0000\r\n" +
		"Message-ID: <x@y>\r\n" +
		"\r\n" +
		"Body line\r\n"
}

type checked struct {
	Verdict
	out string // what the check passed on
}

func run(t *testing.T, c *Checker, o Origin, msg string) checked {
	t.Helper()
	var out bytes.Buffer
	k := c.Begin(context.Background(), o, &out)
	// In pieces, as DATA arrives.
	for i := 0; i < len(msg); i += 7 {
		k.Write([]byte(msg[i:min(i+7, len(msg))]))
	}
	return checked{k.End(), out.String()}
}

func newChecker(t *testing.T, z dnstest.Zone, policy func(string) Mode) (*Checker, *dnstest.Server) {
	t.Helper()
	srv := dnstest.Start(t, z)
	r, err := resolve.New(resolve.Config{Server: srv.Addr(), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{AuthServID: authserv, Resolver: r, Policy: policy, Timeout: 5 * time.Second}), srv
}

var outside = Origin{IP: netip.MustParseAddr("127.0.0.9"), HELO: "mail.outside.test"}

func from(o Origin, sender string) Origin { o.MailFrom = sender; return o }

func TestDMARCPolicies(t *testing.T) {
	z := dnstest.Zone{
		"example.test":        {`TXT "v=spf1 ip4:127.0.0.2 -all"`},
		"_dmarc.example.test": {`TXT "v=DMARC1; p=reject"`},
		"q.test":              {`TXT "v=spf1 ip4:127.0.0.2 -all"`},
		"_dmarc.q.test":       {`TXT "v=DMARC1; p=quarantine"`},
		"n.test":              {`TXT "v=spf1 -all"`},
		"_dmarc.n.test":       {`TXT "v=DMARC1; p=none"`},
		"org.test":            {`TXT "v=spf1 ip4:127.0.0.9 -all"`},
		"_dmarc.org.test":     {`TXT "v=DMARC1; p=reject; sp=quarantine; aspf=r"`},
		"bad.test":            {`TXT "v=spf1 -all"`},
		"_dmarc.bad.test":     {`TXT "v=DMARC1; p=bogus"`},
		"slow.test":           {`TXT "v=spf1 -all"`},
		"_dmarc.slow.test":    {`TXT "v=DMARC1; p=reject"`},
		"spftemp.test":        {`TXT "v=spf1 -all"`},
		"_dmarc.spftemp.test": {`TXT "v=DMARC1; p=reject"`},
	}
	c, srv := newChecker(t, z, nil)
	srv.Drop("_dmarc.slow.test")
	srv.Fail("spftemp.test", 2)

	// A forged message claiming a domain with p=reject: 550 5.7.1.
	v := run(t, c, from(outside, "ceo@example.test"), message("CEO <ceo@example.test>"))
	if v.Refuse == nil || v.Refuse.Code != 550 || v.Refuse.Status != "5.7.1" || v.DMARC != "fail" || v.SPF != "fail" {
		t.Fatalf("forged p=reject: %+v", v.Verdict)
	}
	// From the domain's own address: SPF passes and is aligned.
	v = run(t, c, from(Origin{IP: netip.MustParseAddr("127.0.0.2"), HELO: "h"}, "ceo@example.test"), message("ceo@example.test"))
	if v.Refuse != nil || v.DMARC != "pass" || v.Quarantine {
		t.Fatalf("aligned SPF pass: %+v", v.Verdict)
	}
	// SPF passes for another domain: not aligned.
	v = run(t, c, from(Origin{IP: netip.MustParseAddr("127.0.0.2"), HELO: "h"}, "x@q.test"), message("ceo@example.test"))
	if v.Refuse == nil || v.DMARC != "fail" {
		t.Fatalf("unaligned SPF pass: %+v", v.Verdict)
	}
	// p=quarantine: delivered to Junk, said in the header.
	v = run(t, c, from(outside, "x@q.test"), message("x@q.test"))
	if v.Refuse != nil || !v.Quarantine || !strings.Contains(string(v.Header), "policy.dmarc=quarantine") {
		t.Fatalf("p=quarantine: %+v\n%s", v.Verdict, v.Header)
	}
	// p=none: only the header.
	v = run(t, c, from(outside, "x@n.test"), message("x@n.test"))
	if v.Refuse != nil || v.Quarantine || v.DMARC != "fail" {
		t.Fatalf("p=none: %+v", v.Verdict)
	}
	// A subdomain without a record: the organizational domain's sp=.
	v = run(t, c, from(outside, "x@sub.org.test"), message("x@sub.org.test"))
	if v.Refuse != nil || !v.Quarantine || v.DMARC != "fail" {
		t.Fatalf("sp=quarantine for a subdomain: %+v", v.Verdict)
	}
	// Relaxed SPF alignment: the mail-from domain is the organizational domain.
	v = run(t, c, from(outside, "x@org.test"), message("x@sub.org.test"))
	if v.DMARC != "pass" {
		t.Fatalf("relaxed alignment org.test / sub.org.test: %+v", v.Verdict)
	}
	// A malformed DMARC record: permerror, delivered.
	v = run(t, c, from(outside, "x@bad.test"), message("x@bad.test"))
	if v.Refuse != nil || v.Quarantine || v.DMARC != "permerror" {
		t.Fatalf("malformed record: %+v", v.Verdict)
	}
	// The DMARC record times out: temperror, delivered with the header.
	v = run(t, c, from(outside, "x@slow.test"), message("x@slow.test"))
	if v.Refuse != nil || v.DMARC != "temperror" {
		t.Fatalf("record timeout: %+v", v.Verdict)
	}
	// SPF's DNS fails where p=reject would apply: 451 4.7.1, not a 5xx.
	v = run(t, c, from(outside, "x@spftemp.test"), message("x@spftemp.test"))
	if v.Refuse == nil || v.Refuse.Code != 451 || v.Refuse.Status != "4.7.1" || v.SPF != "temperror" {
		t.Fatalf("SPF temperror under p=reject: %+v", v.Verdict)
	}
	// Two From addresses: permerror, no policy applied.
	v = run(t, c, from(outside, "x@example.test"), message("a@example.test, b@example.test"))
	if v.Refuse != nil || v.DMARC != "permerror" {
		t.Fatalf("two authors: %+v", v.Verdict)
	}
}

func TestServerAndDomainPolicyModes(t *testing.T) {
	z := dnstest.Zone{
		"example.test":        {`TXT "v=spf1 -all"`},
		"_dmarc.example.test": {`TXT "v=DMARC1; p=reject"`},
		"other.test":          {`TXT "v=spf1 -all"`},
		"_dmarc.other.test":   {`TXT "v=DMARC1; p=reject"`},
		"list.test":           {`TXT "v=spf1 -all"`},
		"_dmarc.list.test":    {`TXT "v=DMARC1; p=reject"`},
	}
	policy := func(d string) Mode {
		switch d {
		case "other.test":
			return Quarantine
		case "list.test":
			return Monitor
		}
		return Enforce
	}
	c, _ := newChecker(t, z, policy)
	if v := run(t, c, from(outside, "x@example.test"), message("x@example.test")); v.Refuse == nil {
		t.Fatalf("enforce: %+v", v.Verdict)
	}
	if v := run(t, c, from(outside, "x@other.test"), message("x@other.test")); v.Refuse != nil || !v.Quarantine {
		t.Fatalf("quarantine mode for other.test: %+v", v.Verdict)
	}
	if v := run(t, c, from(outside, "x@list.test"), message("x@sub.list.test")); v.Refuse != nil || v.Quarantine || v.DMARC != "none" && v.DMARC != "fail" {
		t.Fatalf("monitor mode for list.test (and below it): %+v", v.Verdict)
	}
}

func TestPercentSamplesThePolicy(t *testing.T) {
	z := dnstest.Zone{
		"example.test":        {`TXT "v=spf1 -all"`},
		"_dmarc.example.test": {`TXT "v=DMARC1; p=reject; pct=30"`},
	}
	c, _ := newChecker(t, z, nil)
	var asked int
	c.cfg.Sample = func(pct int) bool { asked = pct; return false }
	v := run(t, c, from(outside, "x@example.test"), message("x@example.test"))
	if asked != 30 || v.Refuse != nil || !v.Quarantine {
		t.Fatalf("outside the 30%% sample a reject policy quarantines: asked %d, %+v", asked, v.Verdict)
	}
	c.cfg.Sample = func(int) bool { return true }
	if v := run(t, c, from(outside, "x@example.test"), message("x@example.test")); v.Refuse == nil {
		t.Fatalf("inside the sample: %+v", v.Verdict)
	}
}

func TestForgedAuthenticationResultsAreRemoved(t *testing.T) {
	c, _ := newChecker(t, dnstest.Zone{}, nil)
	msg := message("x@outside.test",
		"Authentication-Results: mx.example.test;\r\n\tdkim=pass header.d=bank.test\r\n",
		"Authentication-Results: (comment) MX.Example.Test 1; spf=pass\r\n",
		"authentication-results:mx.example.test;dmarc=pass\r\n",
		"Authentication-Results: other.test; spf=fail\r\n",
		"Authentication-Results: mx.example.test.evil.test; spf=pass\r\n")
	v := run(t, c, from(outside, "x@outside.test"), msg+"Authentication-Results: mx.example.test; in the body stays\r\n")
	for _, gone := range []string{"bank.test", "MX.Example.Test", "dmarc=pass"} {
		if strings.Contains(v.out, gone) {
			t.Errorf("a forged field with our authserv-id is still there (%s):\n%s", gone, v.out)
		}
	}
	for _, kept := range []string{"other.test; spf=fail", "mx.example.test.evil.test", "Subject: test", "in the body stays"} {
		if !strings.Contains(v.out, kept) {
			t.Errorf("%q was removed:\n%s", kept, v.out)
		}
	}
	if want := "Authentication-Results: mx.example.test;\r\n\tspf=none smtp.mailfrom=outside.test;\r\n\tdkim=none;\r\n\tdmarc=none header.from=outside.test\r\n"; string(v.Header) != want {
		t.Errorf("our header:\n%q\nwant\n%q", v.Header, want)
	}
}

func TestMalformedSignaturesArePermerror(t *testing.T) {
	z := dnstest.Zone{
		"sel._domainkey.outside.test": {`TXT "v=DKIM1; k=rsa; p=notbase64!!"`},
	}
	c, _ := newChecker(t, z, nil)
	for name, sig := range map[string]string{
		"garbage":    "DKIM-Signature: this is not a tag list\r\n",
		"no key tag": "DKIM-Signature: v=1; a=rsa-sha256; d=outside.test; s=sel; h=from; bh=AAAA; b=AAAA\r\n",
		"bad key":    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=outside.test; s=sel; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n",
		"no record":  "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=nowhere.test; s=x; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n",
	} {
		v := run(t, c, from(outside, "x@outside.test"), message("x@outside.test", sig))
		if v.DKIM != "permerror" || v.Refuse != nil {
			t.Errorf("%s: dkim=%s refuse=%v, want permerror and accepted\n%s", name, v.DKIM, v.Refuse, v.Header)
		}
	}
}

// TestMailDkimpySignsIsVerified: dkimpy (Debian's python3-dkim) signs
// with RSA and Ed25519 keys published in the loopback zone; Homing
// verifies both signatures, and DMARC passes on their alignment.
func TestMailDkimpySignsIsVerified(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})
	rsaPub, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	z := dnstest.Zone{
		"outside.test":               {`TXT "v=spf1 -all"`},
		"_dmarc.outside.test":        {`TXT "v=DMARC1; p=reject"`},
		"r1._domainkey.outside.test": {`TXT "v=DKIM1; k=rsa; p=` + base64.StdEncoding.EncodeToString(rsaPub) + `"`},
		"e1._domainkey.outside.test": {`TXT "v=DKIM1; k=ed25519; p=` + base64.StdEncoding.EncodeToString(edPub) + `"`},
	}
	c, _ := newChecker(t, z, nil)
	msg := message("x@outside.test")
	script := `
import sys, base64, dkim
msg = sys.stdin.buffer.read()
rsa_key = open(sys.argv[1], "rb").read()
ed_key = base64.b64encode(bytes.fromhex(sys.argv[2]))
s1 = dkim.sign(msg, b"r1", b"outside.test", rsa_key, canonicalize=(b"relaxed", b"relaxed"))
s2 = dkim.sign(msg, b"e1", b"outside.test", ed_key, signature_algorithm=b"ed25519-sha256")
sys.stdout.buffer.write(s2 + s1 + msg)
`
	keyFile := t.TempDir() + "/rsa.pem"
	if err := writeFile(keyFile, rsaPEM); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", "-c", script, keyFile, hexOf(edPriv.Seed()))
	cmd.Stdin = strings.NewReader(msg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	signed, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkimpy sign: %v\n%s", err, stderr.Bytes())
	}
	if bytes.Count(signed, []byte("DKIM-Signature:")) != 2 {
		t.Fatalf("dkimpy made no two signatures:\n%s", signed)
	}
	v := run(t, c, from(outside, "bounce@elsewhere.test"), string(signed))
	if v.DKIM != "pass" || v.DMARC != "pass" || v.Refuse != nil {
		t.Fatalf("dkimpy's signatures: %+v\n%s", v.Verdict, v.Header)
	}
	if strings.Count(string(v.Header), "dkim=pass") != 2 {
		t.Fatalf("want both signatures passing:\n%s", v.Header)
	}
	// Changed on the way: both fail, and DMARC p=reject refuses.
	bad := bytes.Replace(signed, []byte("Body line"), []byte("Body lime"), 1)
	v = run(t, c, from(outside, "bounce@elsewhere.test"), string(bad))
	if v.DKIM != "fail" || v.DMARC != "fail" || v.Refuse == nil || v.Refuse.Code != 550 {
		t.Fatalf("changed message: %+v\n%s", v.Verdict, v.Header)
	}
}
