package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cert"
	"github.com/homing-mail/homing/ctl"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/dnstest"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/pytools"
	"github.com/homing-mail/homing/testkit/wait"
)

// withDNS points the node at srv.
func withDNS(srv *dnstest.Server) testkit.NodeOption {
	return testkit.WithConfig(func(c *node.Config) { c.Trust.DNS = srv.Addr() })
}

// publishDKIM puts the records `homing ctl dkim dns` gives for domain in
// srv's zone.
func publishDKIM(t *testing.T, c *admin.Client, srv *dnstest.Server, domain string) admin.DKIMRecords {
	t.Helper()
	recs, err := c.DKIMRecords(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs.Records {
		if err := srv.Set(r.Name, `TXT "`+r.Value+`"`); err != nil {
			t.Fatal(err)
		}
	}
	return recs
}

// withoutAuthResults is raw without the cluster's Authentication-Results
// field in front (the MX puts it above its Received field).
func withoutAuthResults(raw []byte) []byte {
	if !bytes.HasPrefix(raw, []byte("Authentication-Results: ")) {
		return raw
	}
	i := bytes.Index(raw, []byte("\r\n"))
	for i >= 0 && i+2 < len(raw) && (raw[i+2] == '\t' || raw[i+2] == ' ') {
		j := bytes.Index(raw[i+2:], []byte("\r\n"))
		if j < 0 {
			return raw
		}
		i += 2 + j
	}
	return raw[i+2:]
}

func header(raw []byte) string {
	h, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	return string(h)
}

// TestSubmittedMailIsDKIMSignedAndDkimpyVerifies is issue #11's "done":
// a message the demo user submits to a remote address reaches a loopback
// sink DKIM-signed (a key made on first use), and dkimpy verifies it
// against the records `ctl dkim dns` prints, served by a loopback DNS
// server. The journey says it was signed.
func TestSubmittedMailIsDKIMSignedAndDkimpyVerifies(t *testing.T) {
	mx := fakemx.Start(t)
	dns := dnstest.Start(t, nil)
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr), withDNS(dns))
	c := client(n)
	createAccount(t, c, "demo@example.test", "signed-mail-pw-1", 0)

	raw := testkit.Message("demo@example.test", "bob@remote.test", "signed", "to the world\r\nwith  two  spaces ")
	id := submit(t, c, "demo@example.test", "signed-mail-pw-1", []string{"bob@remote.test"}, raw)
	got := mx.WaitMessages(t, 1, 20*time.Second)[0]
	h := header(got.Data)
	if strings.Count(h, "DKIM-Signature:") != 1 || !strings.Contains(h, "d=example.test") {
		t.Fatalf("want one DKIM-Signature of example.test:\n%s", h)
	}
	recs := publishDKIM(t, c, dns, "example.test")
	if len(recs.Records) != 1 || !strings.HasPrefix(recs.Records[0].Value, "v=DKIM1; k=rsa; p=") {
		t.Fatalf("records: %+v", recs)
	}
	if ok, why := pytools.DKIMVerify(t, dns, got.Data); !ok {
		t.Fatalf("dkimpy does not verify the relayed message: %s\n%s", why, got.Data)
	}
	ev, err := c.Journey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var signed bool
	for _, e := range ev {
		signed = signed || e.Event == "dkim" && strings.Contains(e.Detail, "signed d=example.test")
	}
	if !signed {
		t.Fatalf("the journey does not say it was signed: %+v", ev)
	}
}

// TestDKIMRotationByCtlGenerate: a key made with the API signs from then
// on, the older one is retired and still listed; a domain that is not
// local has no keys.
func TestDKIMRotationByCtlGenerate(t *testing.T) {
	mx := fakemx.Start(t)
	dns := dnstest.Start(t, nil)
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr), withDNS(dns))
	c := client(n)
	createAccount(t, c, "alice@example.test", "trust-test-pw-123", 0)
	ctx := context.Background()
	first, err := c.GenerateDKIM(ctx, "example.test", admin.DKIMGenerate{Selector: "one"})
	if err != nil || first.Selector != "one" || first.State != "active" || first.Algorithm != "rsa" {
		t.Fatalf("generate: %+v %v", first, err)
	}
	if _, err := c.GenerateDKIM(ctx, "example.test", admin.DKIMGenerate{Selector: "one"}); err == nil || !strings.Contains(err.Error(), "409") && !strings.Contains(err.Error(), "exists") {
		t.Fatalf("the same selector again: %v, want 409", err)
	}
	if _, err := c.GenerateDKIM(ctx, "elsewhere.test", admin.DKIMGenerate{}); err == nil || !strings.Contains(err.Error(), "no local domain") {
		t.Fatalf("a domain that is not local: %v", err)
	}
	if _, err := c.GenerateDKIM(ctx, "example.test", admin.DKIMGenerate{Algorithm: "dsa"}); err == nil || !strings.Contains(err.Error(), "algorithm") {
		t.Fatalf("a bad algorithm: %v", err)
	}
	if _, err := c.GenerateDKIM(ctx, "example.test", admin.DKIMGenerate{Selector: "two", Algorithm: "ed25519"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GenerateDKIM(ctx, "example.test", admin.DKIMGenerate{Selector: "three"}); err != nil {
		t.Fatal(err)
	}
	recs := publishDKIM(t, c, dns, "example.test")
	states := map[string]string{}
	for _, r := range recs.Records {
		states[r.Selector] = r.State
	}
	if states["one"] != "retired" || states["two"] != "active" || states["three"] != "active" {
		t.Fatalf("after rotation: %v", states)
	}
	submit(t, c, "alice@example.test", "trust-test-pw-123", []string{"bob@remote.test"},
		testkit.Message("alice@example.test", "bob@remote.test", "rotated", "x"))
	got := mx.WaitMessages(t, 1, 20*time.Second)[0]
	h := strings.ReplaceAll(header(got.Data), "\r\n ", " ")
	if strings.Count(h, "DKIM-Signature:") != 2 || !strings.Contains(h, "s=three") || !strings.Contains(h, "s=two") || strings.Contains(h, "s=one") {
		t.Fatalf("want signatures by three (rsa) and two (ed25519), not one:\n%s", h)
	}
	if ok, why := pytools.DKIMVerify(t, dns, got.Data); !ok {
		t.Fatalf("dkimpy: %s", why)
	}
}

// TestDKIMForADomainAddedAtRunTime: the DKIM keys follow the cluster's
// local domains as they change (package domains), not --domains: a
// domain has no key before it is added, gets one once it is, its mail is
// signed with it and dkimpy verifies it.
func TestDKIMForADomainAddedAtRunTime(t *testing.T) {
	mx := fakemx.Start(t)
	dns := dnstest.Start(t, nil)
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr), withDNS(dns))
	c := client(n)
	ctx := context.Background()
	if _, err := c.GenerateDKIM(ctx, "example.org", admin.DKIMGenerate{Selector: "org1"}); err == nil || !strings.Contains(err.Error(), "no local domain") {
		t.Fatalf("a key for a domain that is not local yet: %v", err)
	}
	if _, err := c.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	if k, err := c.GenerateDKIM(ctx, "example.org", admin.DKIMGenerate{Selector: "org1"}); err != nil || k.State != "active" {
		t.Fatalf("a key for the added domain: %+v %v", k, err)
	}
	createAccount(t, c, "carol@example.org", "added-domain-pw-1", 0)
	submit(t, c, "carol@example.org", "added-domain-pw-1", []string{"bob@remote.test"},
		testkit.Message("carol@example.org", "bob@remote.test", "from a new domain", "signed"))
	got := mx.WaitMessages(t, 1, 20*time.Second)[0]
	h := strings.ReplaceAll(header(got.Data), "\r\n ", " ")
	if strings.Count(h, "DKIM-Signature:") != 1 || !strings.Contains(h, "d=example.org") || !strings.Contains(h, "s=org1") {
		t.Fatalf("want one DKIM-Signature of example.org by org1:\n%s", h)
	}
	publishDKIM(t, c, dns, "example.org")
	if ok, why := pytools.DKIMVerify(t, dns, got.Data); !ok {
		t.Fatalf("dkimpy: %s", why)
	}
}

// trustZone is a zone where example.test (local) publishes SPF -all and
// DMARC p=reject, and outside.test p=quarantine.
func trustZone() dnstest.Zone {
	return dnstest.Zone{
		"example.test":        {`TXT "v=spf1 ip4:192.0.2.1 -all"`},
		"_dmarc.example.test": {`TXT "v=DMARC1; p=reject"`},
		"outside.test":        {`TXT "v=spf1 ip4:192.0.2.2 -all"`},
		"_dmarc.outside.test": {`TXT "v=DMARC1; p=quarantine"`},
		"fine.test":           {`TXT "v=spf1 ip4:127.0.0.1 -all"`},
		"_dmarc.fine.test":    {`TXT "v=DMARC1; p=reject"`},
	}
}

// TestForgedLocalDomainRefusedAtData: a message from outside claiming a
// local domain whose DMARC policy is p=reject gets 550 5.7.1 at the end
// of DATA and is not stored; p=quarantine goes to Junk; a passing
// message is stored with the cluster's Authentication-Results and no
// forged one; the results are counted and in the journey.
func TestForgedLocalDomainRefusedAtData(t *testing.T) {
	dns := dnstest.Start(t, trustZone())
	n := testkit.StartNode(t, "n1", withDNS(dns))
	c := client(n)
	createAccount(t, c, "alice@example.test", "trust-test-pw-123", 0)

	forged := testkit.Message("ceo@example.test", "alice@example.test", "wire the money", "now")
	_, err := testkit.Send(n.SMTPAddr(), "ceo@example.test", []string{"alice@example.test"}, forged)
	assertSMTPCode(t, err, 550, "5.7.1")

	junk := testkit.Message("news@outside.test", "alice@example.test", "offer", "buy")
	if _, err := testkit.Send(n.SMTPAddr(), "news@outside.test", []string{"alice@example.test"}, junk); err != nil {
		t.Fatal(err)
	}
	fine := append([]byte("Authentication-Results: example.test; dmarc=pass header.from=bank.test\r\n"),
		testkit.Message("friend@fine.test", "alice@example.test", "hi", "hello")...)
	reply, err := testkit.Send(n.SMTPAddr(), "friend@fine.test", []string{"alice@example.test"}, fine)
	if err != nil {
		t.Fatal(err)
	}
	ms := waitMessages(t, c, "alice@example.test", 2)
	folders := map[string]string{}
	for _, m := range ms {
		raw, err := c.RawMessage(context.Background(), "alice@example.test", m.ID)
		if err != nil {
			t.Fatal(err)
		}
		h := header(raw)
		switch {
		case strings.Contains(h, "Subject: wire the money"):
			t.Fatalf("the forged message was stored:\n%s", raw)
		case strings.Contains(h, "Subject: offer"):
			folders["offer"] = m.Folder
			if !strings.Contains(h, "dmarc=fail") || !strings.Contains(h, "policy.dmarc=quarantine") {
				t.Errorf("the quarantined message's header:\n%s", h)
			}
		case strings.Contains(h, "Subject: hi"):
			folders["hi"] = m.Folder
			if !strings.HasPrefix(h, "Authentication-Results: example.test;\r\n\tspf=pass smtp.mailfrom=fine.test;") ||
				!strings.Contains(h, "dmarc=pass header.from=fine.test") {
				t.Errorf("the cluster's header:\n%s", h)
			}
			if strings.Contains(h, "bank.test") {
				t.Errorf("the forged Authentication-Results is still there:\n%s", h)
			}
		}
	}
	if folders["offer"] != "Junk" || folders["hi"] != "INBOX" {
		t.Fatalf("folders %v; want offer in Junk, hi in INBOX", folders)
	}
	_, samples := scrape(t, n.AdminAddr())
	want := map[string]bool{
		`homing_auth_results_total{method="dmarc",result="fail"} 2`: false,
		`homing_auth_results_total{method="dmarc",result="pass"} 1`: false,
		`homing_auth_results_total{method="spf",result="fail"} 2`:   false,
		`homing_auth_results_total{method="dkim",result="none"} 3`:  false,
	}
	for _, s := range samples {
		if _, ok := want[s]; ok {
			want[s] = true
		}
	}
	for s, seen := range want {
		if !seen {
			t.Errorf("metrics lack %s", s)
		}
	}
	qid := reply[strings.LastIndex(reply, " ")+1:]
	ev, err := c.Journey(context.Background(), qid)
	if err != nil {
		t.Fatal(err)
	}
	var checked bool
	for _, e := range ev {
		checked = checked || e.Event == "checked" && strings.Contains(e.Detail, "dmarc=pass") && strings.Contains(e.Detail, "removed 1 forged")
	}
	if !checked {
		t.Fatalf("the journey of %s lacks the checks: %+v", qid, ev)
	}
}

// TestAuthenticatedAndMemberMailIsNotChecked: the submission listener's
// mail (AUTH) is not checked: a local user's message is not refused by
// its own domain's p=reject.
func TestAuthenticatedMailIsNotChecked(t *testing.T) {
	mx := fakemx.Start(t)
	dns := dnstest.Start(t, trustZone())
	n := testkit.StartNode(t, "n1", withDNS(dns), withRoute("remote.test", mx.Addr), testkit.WithConfig(func(c *node.Config) {
		c.Listen.Submission = "127.0.0.1:0"
	}))
	createAccount(t, client(n), "alice@example.test", "trust-test-pw-123", 0)
	sc, err := gosmtp.Dial(n.SubmissionAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Auth(sasl.NewPlainClient("", "alice@example.test", "trust-test-pw-123")); err != nil {
		t.Fatal(err)
	}
	msg := testkit.Message("alice@example.test", "bob@remote.test", "mine", "from me")
	if err := sc.SendMail("alice@example.test", []string{"bob@remote.test"}, bytes.NewReader(msg)); err != nil {
		t.Fatalf("the local user's message was refused: %v", err)
	}
	got := mx.WaitMessages(t, 1, 20*time.Second)[0]
	if strings.Contains(header(got.Data), "Authentication-Results") || !strings.Contains(header(got.Data), "DKIM-Signature") {
		t.Fatalf("submitted mail: checked or unsigned:\n%s", got.Data)
	}
}

// TestDNSTimeoutIsTemporary: when SPF's DNS does not answer and the
// author domain's policy is p=reject, the answer is 451 4.7.1, not 5xx.
func TestDNSTimeoutIsTemporary(t *testing.T) {
	dns := dnstest.Start(t, trustZone())
	dns.Drop("example.test")
	n := testkit.StartNode(t, "n1", withDNS(dns))
	createAccount(t, client(n), "alice@example.test", "trust-test-pw-123", 0)
	msg := testkit.Message("ceo@example.test", "alice@example.test", "x", "y")
	_, err := testkit.Send(n.SMTPAddr(), "ceo@example.test", []string{"alice@example.test"}, msg)
	assertSMTPCode(t, err, 451, "4.7.1")
}

// TestSignedOnceThroughTwoQueues: a backend in mode Locally forwarding to
// the frontends (--forward-to '*') does not sign; the frontend that
// relays does, once, with the key it made on first use; the key reaches
// the backend; then in mode Remotely it is signed once too. dkimpy
// verifies both.
func TestSignedOnceThroughTwoQueues(t *testing.T) {
	mx := fakemx.Start(t)
	dns := dnstest.Start(t, nil)
	c := newCluster(t)
	c.Add("fe1", mail.RoleFrontend, "--queue-mode", "locally-for-others", "--route", "remote.test="+mx.Addr, "--dns", dns.Addr())
	c.Add("be1", mail.RoleBackend, "--queue-mode", "locally", "--forward-to", "*", "--dns", dns.Addr())
	c.WaitOwners(t, "be1")
	fe, be := c.Admin("fe1"), c.Admin("be1")
	wait.For(t, 20*time.Second, func() bool {
		_, err := be.CreateAccount(context.Background(), admin.CreateAccount{Address: "alice@example.test", Password: "trust-test-pw-123"})
		return err == nil || strings.Contains(err.Error(), "exists")
	}, "creating alice")
	send := func(subject string) fakemx.Transaction {
		t.Helper()
		before := len(mx.Messages())
		raw := testkit.Message("alice@example.test", "bob@remote.test", subject, "generated on the backend")
		if _, err := be.Submit(context.Background(), "alice@example.test", "trust-test-pw-123", []string{"bob@remote.test"}, raw); err != nil {
			t.Fatal(err)
		}
		return mx.WaitMessages(t, before+1, 30*time.Second)[before]
	}
	got := send("in mode locally")
	if n := strings.Count(header(got.Data), "DKIM-Signature:"); n != 1 {
		t.Fatalf("mode locally + forward-to '*': %d signatures, want 1:\n%s", n, got.Data)
	}
	// be1 -> fe1 went over TLS (the cluster CA's, verified) as a member.
	if !strings.Contains(header(got.Data), "by fe1 with ESMTPS ") {
		t.Fatalf("the forward to the frontend was not TLS:\n%s", got.Data)
	}
	publishDKIM(t, fe, dns, "example.test")
	if ok, why := pytools.DKIMVerify(t, dns, got.Data); !ok {
		t.Fatalf("dkimpy: %s", why)
	}
	// The frontend's key reaches the backend.
	feKeys, _ := fe.DKIMKeys(context.Background())
	wait.For(t, 20*time.Second, func() bool {
		ks, err := be.DKIMKeys(context.Background())
		return err == nil && len(ks) == 1 && len(feKeys) == 1 && ks[0].Selector == feKeys[0].Selector
	}, "the backend does not have the frontend's key %v", feKeys)

	// A key made on the backend signs what the frontend relays.
	k, err := be.GenerateDKIM(context.Background(), "example.test", admin.DKIMGenerate{Selector: "bekey"})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, func() bool {
		ks, _ := fe.DKIMKeys(context.Background())
		for _, x := range ks {
			if x.Selector == k.Selector && x.State == "active" {
				return true
			}
		}
		return false
	}, "the frontend does not have the backend's new key")
	mode := "remotely"
	if _, err := be.UpdateSettings(context.Background(), admin.SettingsUpdate{QueueMode: &mode}); err != nil {
		t.Fatal(err)
	}
	got = send("in mode remotely")
	if !strings.Contains(header(got.Data), "by fe1 with ESMTPS") {
		t.Fatalf("the transfer to the frontend was not TLS:\n%s", header(got.Data))
	}
	h := strings.ReplaceAll(header(got.Data), "\r\n ", " ")
	if strings.Count(h, "DKIM-Signature:") != 1 || !strings.Contains(h, "s=bekey") {
		t.Fatalf("mode remotely: want one signature by bekey:\n%s", h)
	}
	publishDKIM(t, fe, dns, "example.test")
	if ok, why := pytools.DKIMVerify(t, dns, got.Data); !ok {
		t.Fatalf("dkimpy: %s", why)
	}
}

// TestCtlDKIM: homing ctl dkim generate prints the record to publish,
// dkim dns prints every key's record in zone-file syntax (strings of at
// most 255 bytes), dkim lists the keys; a domain that is not local is
// exit 1 with a line that says so.
func TestCtlDKIM(t *testing.T) {
	n := testkit.StartNode(t, "n1")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := ctl.Main(append([]string{"--admin", n.AdminAddr()}, args...), strings.NewReader(""), &out, &errb,
			func(string) string { return "" })
		return code, out.String(), errb.String()
	}
	code, out, errs := run("dkim", "generate", "example.test", "--selector", "s1")
	if code != 0 || !strings.Contains(out, "made the rsa key s1 of example.test") ||
		!strings.Contains(out, `s1._domainkey.example.test. IN TXT "v=DKIM1; k=rsa; p=`) {
		t.Fatalf("generate: %d\n%s%s", code, out, errs)
	}
	run("dkim", "generate", "example.test", "--selector", "s2")
	code, out, _ = run("dkim", "dns", "example.test")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "s2._domainkey") || !strings.Contains(lines[1], "retired") {
		t.Fatalf("dns: %d\n%s", code, out)
	}
	for _, part := range strings.Split(lines[0], `"`) {
		if len(part) > 255 {
			t.Fatalf("a TXT string of %d bytes:\n%s", len(part), lines[0])
		}
	}
	code, out, _ = run("dkim", "--json")
	if code != 0 || !strings.Contains(out, `"selector": "s1"`) || !strings.Contains(out, `"state": "retired"`) || strings.Contains(out, "private") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	code, _, errs = run("dkim", "dns", "elsewhere.test")
	if code != 1 || !strings.Contains(errs, "no local domain elsewhere.test") {
		t.Fatalf("a foreign domain: %d %q", code, errs)
	}
	if code, _, _ := run("dkim", "generate"); code != 2 {
		t.Fatalf("generate without a domain: exit %d, want 2", code)
	}
}

// TestDANEDefersABadCertificateThenDelivers: the relay target on
// loopback publishes a validated TLSA record (DANE-EE) that its
// certificate does not match: the message waits in the queue with a
// 4.7.5 reason naming the TLSA records; once the record matches, the
// retry delivers it over TLS.
func TestDANEDefersABadCertificateThenDelivers(t *testing.T) {
	c, err := cert.SelfSigned("mx.remote.test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(c.Certificate[0])
	srvTLS := &tls.Config{Certificates: []tls.Certificate{c}}
	mx := fakemx.Start(t, func(s *gosmtp.Server) { s.TLSConfig = srvTLS })
	_, port, _ := net.SplitHostPort(mx.Addr)
	tlsaName := "_" + port + "._tcp.mx.remote.test"
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	wrong := sha256.Sum256([]byte("another key"))
	dns := dnstest.Start(t, dnstest.Zone{
		"mx.remote.test": {"A 127.0.0.1"},
		tlsaName:         {"1 TLSA 3 1 1 " + hex.EncodeToString(wrong[:])},
	})
	dns.Secure(tlsaName)
	n := testkit.StartNode(t, "n1", withDNS(dns), withRoute("remote.test", "mx.remote.test:"+port))
	cl := client(n)
	createAccount(t, cl, "alice@example.test", "trust-test-pw-123", 0)
	id := submit(t, cl, "alice@example.test", "trust-test-pw-123", []string{"bob@remote.test"},
		testkit.Message("alice@example.test", "bob@remote.test", "dane", "x"))
	wait.For(t, 20*time.Second, func() bool {
		e, err := cl.QueueEntry(context.Background(), id)
		return err == nil && strings.Contains(e.LastError, "4.7.5") && strings.Contains(e.LastError, "TLSA")
	}, "the message is not deferred for its TLSA records")
	for _, tx := range mx.Transactions() {
		if tx.DataSeen {
			t.Fatal("the message reached a host whose certificate fails DANE")
		}
	}
	if err := dns.Set(tlsaName, "1 TLSA 3 1 1 "+hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	got := mx.WaitMessages(t, 1, 30*time.Second)[0]
	if !got.TLS {
		t.Fatal("delivered without TLS")
	}
}
