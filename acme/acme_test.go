package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/homing-mail/homing/mail"
)

const testCA = "https://ca.test/dir"

// bundle makes a self-signed bundle for names valid from nb for life.
func bundle(t *testing.T, nb time.Time, life time.Duration, names ...string) Bundle {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: nb.Truncate(time.Second), NotAfter: nb.Add(life).Truncate(time.Second)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	leaf, _ := x509.ParseCertificate(der)
	return Bundle{Directory: testCA, Names: names, Chain: [][]byte{der}, Key: kb, NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}
}

// TestStoreMergeConvergesInAnyOrder: for one set of names the bundle
// that expires last wins, whatever order the bundles come in; broken
// bundles are refused; the store survives a reopen.
func TestStoreMergeConvergesInAnyOrder(t *testing.T) {
	now := time.Now()
	older := bundle(t, now.Add(-time.Hour), 90*24*time.Hour, "mx.example.test")
	newer := bundle(t, now, 90*24*time.Hour, "mx.example.test")
	newer.Names = []string{"MX.example.test."} // normalized by Merge
	other := bundle(t, now, 90*24*time.Hour, "b.example.test", "a.example.test")
	broken := newer
	broken.Key = older.Key // the key of another certificate
	forged := bundle(t, now.Add(time.Hour), 90*24*time.Hour, "evil.example.test")
	forged.Names = []string{"mx.example.test"} // names its certificate is not for
	staging := bundle(t, now.Add(2*time.Hour), 90*24*time.Hour, "mx.example.test")
	staging.Directory = "https://staging.test/other"

	var leaves [2][]byte
	for i, order := range [][]Bundle{{older, newer, staging, other, broken, forged}, {forged, broken, other, newer, staging, older}} {
		dir := t.TempDir()
		s, err := OpenStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		changes := 0
		s.OnChange(func() { changes++ })
		for _, b := range order {
			if _, err := s.Merge([]Bundle{b}); err != nil {
				t.Fatal(err)
			}
		}
		got := s.Get(testCA, []string{"mx.example.test"})
		if st := s.Get(staging.Directory, []string{"mx.example.test"}); st == nil || !st.NotAfter.Equal(staging.NotAfter) {
			t.Fatalf("order %d: another CA's certificate is not kept apart", i)
		}
		if got == nil || !got.NotAfter.Equal(newer.NotAfter) {
			t.Fatalf("order %d: kept %+v, want the later one", i, got)
		}
		leaves[i] = got.Chain[0]
		if s.Get(testCA, []string{"a.example.test", "b.example.test"}) == nil {
			t.Fatalf("order %d: the other set of names is missing", i)
		}
		if again, _ := s.Merge(s.All()); again {
			t.Fatalf("order %d: merging the store into itself changed it", i)
		}
		re, err := OpenStore(dir)
		if err != nil || len(re.All()) != 3 {
			t.Fatalf("order %d: reopened: %v, %d bundles", i, err, len(re.All()))
		}
		if changes == 0 {
			t.Fatal("no change hook ran")
		}
	}
	if string(leaves[0]) != string(leaves[1]) {
		t.Fatal("two orders kept two certificates")
	}
}

func TestStoreIsBounded(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range maxBundles + 4 {
		s.Merge([]Bundle{bundle(t, now, time.Duration(i+1)*time.Hour, fmt.Sprintf("n%d.example.test", i))})
	}
	s.Merge([]Bundle{bundle(t, now.Add(-30*24*time.Hour), 24*time.Hour, "expired.example.test")})
	if n := len(s.All()); n != maxBundles {
		t.Fatalf("%d bundles kept, want %d", n, maxBundles)
	}
	if s.Get(testCA, []string{"n0.example.test"}) != nil || s.Get(testCA, []string{"expired.example.test"}) != nil {
		t.Fatal("the bundles that expire first were not the ones dropped")
	}
}

func TestRenewAtIsAThirdOfTheLifetimeBeforeExpiry(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := Bundle{NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}
	if got, want := b.RenewAt(), nb.Add(60*24*time.Hour); !got.Equal(want) {
		t.Fatalf("RenewAt = %v, want %v", got, want)
	}
}

func TestAccountKeyIsKept(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenStore(dir)
	k1, err := s.accountKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s.accountKey()
	if err != nil || !publicKeysEqual(k1.Public(), k2.Public()) {
		t.Fatalf("a second load made another key: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, accountKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("account key file: %v %v", fi, err)
	}
}

// TestChallengesAnswerRFC8555Section83: the key authorization at
// /.well-known/acme-challenge/TOKEN, 404 for anything else, bounded.
func TestChallengesAnswerRFC8555Section83(t *testing.T) {
	cs := NewChallenges()
	cs.Add(Challenge{Token: "tok_en-1", KeyAuth: "tok_en-1.thumb"})
	cs.Add(Challenge{Token: "../etc/passwd", KeyAuth: "x"})
	srv := httptest.NewServer(cs)
	defer srv.Close()
	get := func(path string) (int, string) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b [256]byte
		n, _ := res.Body.Read(b[:])
		return res.StatusCode, string(b[:n])
	}
	if code, body := get("/.well-known/acme-challenge/tok_en-1"); code != 200 || body != "tok_en-1.thumb" {
		t.Fatalf("answer: %d %q", code, body)
	}
	for _, p := range []string{"/.well-known/acme-challenge/other", "/", "/.well-known/acme-challenge/../etc/passwd"} {
		if code, _ := get(p); code != 404 {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
	cs.Remove("tok_en-1")
	if code, _ := get("/.well-known/acme-challenge/tok_en-1"); code != 404 {
		t.Fatal("a removed challenge is still answered")
	}
	now := time.Now()
	cs.now = func() time.Time { return now }
	cs.Add(Challenge{Token: "short", KeyAuth: "k", Expires: now.Add(time.Minute)})
	now = now.Add(2 * time.Minute)
	if _, ok := cs.lookup("short"); ok {
		t.Fatal("an expired challenge is answered")
	}
	for i := range maxChallenges + 10 {
		cs.Add(Challenge{Token: fmt.Sprintf("t%d", i), KeyAuth: "k"})
	}
	if len(cs.m) > maxChallenges {
		t.Fatalf("%d challenges kept, want at most %d", len(cs.m), maxChallenges)
	}
}

// TestErrorsSayTemporaryOrPermanent: what trying again may cure and
// what it may not, and the waits that follow.
func TestErrorsSayTemporaryOrPermanent(t *testing.T) {
	prob := func(typ string, status int) error {
		return &xacme.Error{StatusCode: status, ProblemType: "urn:ietf:params:acme:error:" + typ}
	}
	for _, c := range []struct {
		err  error
		temp bool
	}{
		{prob("rateLimited", 429), true},
		{prob("serverInternal", 500), true},
		{prob("connection", 400), true},
		{prob("dns", 400), true},
		{prob("rejectedIdentifier", 400), false},
		{prob("caa", 403), false},
		{prob("unauthorized", 403), false},
		{prob("externalAccountRequired", 403), false},
		{&xacme.AuthorizationError{Errors: []error{prob("unauthorized", 403)}}, false},
		{&xacme.AuthorizationError{Errors: []error{prob("unauthorized", 403), prob("connection", 400)}}, true},
		{&xacme.OrderError{Status: "invalid", Problem: prob("badCSR", 400).(*xacme.Error)}, false},
		{x509.UnknownAuthorityError{}, false},
		{errors.New("connection reset"), true},
	} {
		if got := temporary(c.err); got != c.temp {
			t.Errorf("temporary(%v) = %v, want %v", c.err, got, c.temp)
		}
		if got := mail.IsTemporary(stepErr("step", c.err)); got != c.temp {
			t.Errorf("mail.IsTemporary(stepErr(%v)) = %v, want %v", c.err, got, c.temp)
		}
	}
	m := &Manager{cfg: Config{RetryMin: time.Minute, RetryMax: time.Hour}}
	temp := stepErr("x", prob("serverInternal", 500))
	for failures, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 9: time.Hour} {
		if got := m.backoff(failures, temp); got != want {
			t.Errorf("backoff after %d temporary failures = %v, want %v", failures, got, want)
		}
	}
	if got := m.backoff(1, stepErr("x", prob("caa", 403))); got != time.Hour {
		t.Errorf("backoff after a permanent failure = %v, want an hour", got)
	}
}

func TestValidNamesAndDirectories(t *testing.T) {
	for _, n := range []string{"mx.example.com", "a-b.example.co.uk"} {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q): %v", n, err)
		}
	}
	for _, n := range []string{"*.example.com", "127.0.0.1", "localhost", "-a.example.com", "a..example.com", "a_b.example.com"} {
		if ValidName(n) == nil {
			t.Errorf("ValidName(%q) accepted it", n)
		}
	}
	for _, u := range []string{"http://ca.example/dir", "ca.example/dir", "https:///dir", ""} {
		if ValidDirectory(u) == nil {
			t.Errorf("ValidDirectory(%q) accepted it", u)
		}
	}
	if ValidDirectory("https://acme-v02.api.letsencrypt.org/directory") != nil {
		t.Error("Let's Encrypt's directory refused")
	}
}
