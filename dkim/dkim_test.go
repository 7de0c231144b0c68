package dkim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"
	"go.uber.org/goleak"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/resolve"
	"github.com/homing-mail/homing/testkit/clock"
	"github.com/homing-mail/homing/testkit/dnstest"
	"github.com/homing-mail/homing/testkit/pytools"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const message = "Received: from x by y; Mon, 1 Dec 2026 10:00:00 +0000\r\n" +
	"From: Alice <alice@example.test>\r\n" +
	"To: bob@remote.test\r\n" +
	"Subject: hello\r\n" +
	"Date: Mon, 1 Dec 2026 10:00:00 +0000\r\n" +
	"Message-ID: <1@example.test>\r\n" +
	"\r\n" +
	"Hello  Bob,\r\n\r\nbye \r\n\r\n\r\n"

func newKeyring(t *testing.T) *Keyring {
	t.Helper()
	k, err := OpenKeyring(filepath.Join(t.TempDir(), "dkim.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// zoneOf publishes every key of k in srv.
func zoneOf(t *testing.T, srv *dnstest.Server, k *Keyring) {
	t.Helper()
	for _, key := range k.All() {
		v, err := key.RecordValue()
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Set(key.RecordName(), `TXT "`+v+`"`); err != nil {
			t.Fatal(err)
		}
	}
}

func sign(t *testing.T, s *Signer, raw string, src mail.Source) (*mail.Message, []Signature) {
	t.Helper()
	out, sigs, err := s.Sign(&mail.Message{Envelope: &mail.Envelope{Source: src}, Body: mail.BytesBody(raw)}, nil)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return out, sigs
}

func localExampleTest(d string) bool { return d == "example.test" }

func TestSignedMailVerifiesWithGoMsgauthAndDkimpy(t *testing.T) {
	for _, alg := range []string{AlgorithmRSA, AlgorithmEd25519} {
		t.Run(alg, func(t *testing.T) {
			k := newKeyring(t)
			s := NewSigner(SignerConfig{Keys: k, IsLocal: localExampleTest, Algorithm: alg})
			out, sigs := sign(t, s, message, mail.SourceSubmission)
			if len(sigs) != 1 || sigs[0].Domain != "example.test" || sigs[0].Algorithm != alg {
				t.Fatalf("signatures %v; want one of example.test with %s (a key made on first use)", sigs, alg)
			}
			raw, _ := mail.ReadBody(out.Body)
			if !bytes.HasPrefix(raw, []byte("DKIM-Signature: ")) || !bytes.HasSuffix(raw, []byte(message)) {
				t.Fatalf("the signature is not a field in front of the message:\n%s", raw)
			}
			for _, want := range []string{"c=relaxed/relaxed", "d=example.test", "h=From:From:"} {
				if !bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n "), nil), []byte(want)) {
					t.Errorf("signature lacks %q:\n%s", want, raw)
				}
			}
			if bytes.Contains(raw[:bytes.Index(raw, []byte("Received:"))], []byte("Received")) {
				t.Error("the Received field is signed")
			}

			srv := dnstest.Start(t, dnstest.Zone{})
			zoneOf(t, srv, k)
			r, err := resolve.New(resolve.Config{Server: srv.Addr()})
			if err != nil {
				t.Fatal(err)
			}
			vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(raw), &msgdkim.VerifyOptions{
				LookupTXT: func(n string) ([]string, error) { return r.LookupTXT(context.Background(), n) }})
			if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.test" {
				t.Fatalf("go-msgauth verification: %v %+v", err, vs)
			}
			dkimpyVerify(t, srv, raw, true)
			// Changed in transit: both say fail.
			bad := bytes.Replace(raw, []byte("Hello  Bob"), []byte("Hello Eve"), 1)
			dkimpyVerify(t, srv, bad, false)
		})
	}
}

// dkimpyVerify checks dkimpy's verdict on raw.
func dkimpyVerify(t *testing.T, srv *dnstest.Server, raw []byte, want bool) {
	t.Helper()
	if got, why := pytools.DKIMVerify(t, srv, raw); got != want {
		t.Fatalf("dkimpy says pass=%v (%s), want %v", got, why, want)
	}
}

func TestWhoseMailIsSigned(t *testing.T) {
	k := newKeyring(t)
	local := func(d string) bool { return d == "example.test" || d == "other.test" }
	s := NewSigner(SignerConfig{Keys: k, IsLocal: local, Fallback: "example.test", Algorithm: AlgorithmEd25519})

	// A subdomain of a local domain signs as the local domain (aligned).
	_, sigs := sign(t, s, strings.Replace(message, "alice@example.test", "alice@news.example.test", 1), mail.SourceAPI)
	if len(sigs) != 1 || sigs[0].Domain != "example.test" {
		t.Fatalf("subdomain author: %v", sigs)
	}
	// A report from MAILER-DAEMON@host signs with the fallback domain.
	dsn := strings.Replace(message, "Alice <alice@example.test>", "Mail Delivery System <MAILER-DAEMON@mx1.host.test>", 1)
	if _, sigs = sign(t, s, dsn, mail.SourceDSN); len(sigs) != 1 || sigs[0].Domain != "example.test" {
		t.Fatalf("DSN: %v", sigs)
	}
	// Not local and not a report: not signed.
	foreign := strings.Replace(message, "alice@example.test", "alice@elsewhere.test", 1)
	if _, _, err := s.Sign(&mail.Message{Envelope: &mail.Envelope{Source: mail.SourceSMTP}, Body: mail.BytesBody(foreign)}, nil); err != ErrNoKey {
		t.Fatalf("a foreign author: %v, want ErrNoKey", err)
	}
	// Signed once: a second pass (another queue of the cluster) adds nothing.
	once, sigs := sign(t, s, message, mail.SourceSubmission)
	twice, sigs2, err := s.Sign(once, nil)
	if err != nil || len(sigs2) != 0 || twice.Body.Size() != once.Body.Size() {
		t.Fatalf("signed twice: %v %v (%d -> %d bytes)", sigs2, err, once.Body.Size(), twice.Body.Size())
	}
	_ = sigs
	// Without a key and without first-use keys: not signed.
	none := NewSigner(SignerConfig{Keys: newKeyring(t), IsLocal: local})
	if _, _, err := none.Sign(&mail.Message{Envelope: &mail.Envelope{}, Body: mail.BytesBody(message)}, nil); err != ErrNoKey {
		t.Fatalf("no key: %v", err)
	}
}

func TestRotationRetiresTheOldSelector(t *testing.T) {
	c := clock.New(time.Time{})
	k, _ := OpenKeyring(filepath.Join(t.TempDir(), "dkim.json"), c.Now)
	old, err := k.Generate("Example.TEST", "one", "")
	if err != nil || old.Algorithm != AlgorithmRSA || old.Domain != "example.test" {
		t.Fatalf("Generate: %+v, %v", old, err)
	}
	if _, err := k.Generate("example.test", "one", AlgorithmEd25519); err == nil {
		t.Fatal("a selector taken twice")
	}
	if _, err := k.Generate("example.test", "bad_sel", ""); err != ErrBadSelector {
		t.Fatalf("bad selector: %v", err)
	}
	ed, _ := k.Generate("example.test", "ed", AlgorithmEd25519)
	c.Advance(time.Hour)
	k.Generate("example.test", "two", AlgorithmRSA)
	signing, _, _ := k.Signing("example.test", "")
	if len(signing) != 2 || signing[0].Selector != "two" || signing[1].Selector != ed.Selector {
		t.Fatalf("signing keys after rotation: %+v; want two (rsa) and ed (ed25519)", signing)
	}
	keys := k.Keys("example.test")
	if keys[0].Selector != "one" || keys[0].Active() {
		t.Fatalf("the old rsa key is not retired: %+v", keys[0])
	}
	// Saved: a new keyring from the file has the same keys.
	again, err := OpenKeyring(k.path, nil)
	if err != nil || len(again.All()) != 3 || again.Keys("example.test")[0].Active() {
		t.Fatalf("reopened: %v %+v", err, again.All())
	}
	if fi, _ := os.Stat(k.path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the key file is %v, want 0600", fi.Mode().Perm())
	}
}

func TestMergeConvergesInAnyOrder(t *testing.T) {
	c := clock.New(time.Time{})
	a, _ := OpenKeyring(filepath.Join(t.TempDir(), "a.json"), c.Now)
	b, _ := OpenKeyring(filepath.Join(t.TempDir(), "b.json"), c.Now)
	a.Generate("example.test", "s1", "ed25519")
	c.Advance(time.Minute)
	b.Generate("example.test", "s1", "ed25519") // the same selector, another key, later
	b.Generate("other.test", "", "ed25519")
	c.Advance(time.Minute)
	a.Generate("example.test", "s2", "ed25519") // retires a's s1

	a2, b2 := a.All(), b.All()
	if ch, _ := a.Merge(b2); !ch {
		t.Fatal("a learnt nothing from b")
	}
	if ch, _ := b.Merge(a2); !ch {
		t.Fatal("b learnt nothing from a")
	}
	if ch, _ := a.Merge(b.All()); ch {
		t.Fatal("merging again changed a")
	}
	ja, jb := fingerprint(a.All()), fingerprint(b.All())
	if ja != jb {
		t.Fatalf("keyrings differ after merging both ways:\n%s\n%s", ja, jb)
	}
	s1 := a.Keys("example.test")[0]
	if s1.Selector != "s1" || !bytes.Equal(s1.Private, a2[0].Private) || s1.Active() {
		t.Fatalf("s1 should be a's older key, retired: %+v", s1)
	}
}

func fingerprint(keys []Key) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.Domain + "/" + k.Selector + "/" + k.Retired.String() + "/" + string(k.Private[len(k.Private)-4:]) + "\n")
	}
	return b.String()
}
