package smtp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/resolve"
	"github.com/homing-mail/homing/testkit/dnstest"
	"github.com/homing-mail/homing/testkit/fakemx"
)

// tlsaOf adapts the node's resolver to TLSAResolver (node does the same).
type tlsaOf struct{ r *resolve.Resolver }

func (a tlsaOf) LookupTLSA(ctx context.Context, port int, host string) ([]TLSA, bool, error) {
	recs, secure, err := a.r.LookupTLSA(ctx, port, host)
	out := make([]TLSA, len(recs))
	for i, r := range recs {
		out[i] = TLSA{Usage: r.Usage, Selector: r.Selector, MatchingType: r.MatchingType, Data: r.Data}
	}
	return out, secure, err
}

// testCA issues certificates for the DANE tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

// leaf is a server certificate for host, with the CA in its chain.
func (ca *testCA) leaf(t *testing.T, host string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestDANE: a relay target on loopback with a test CA and a TLSA record in
// a validated zone: a matching certificate delivers, a bad one defers with
// a 4.7.5 that names DANE, and what DANE does not cover stays
// opportunistic.
func TestDANE(t *testing.T) {
	ca := newTestCA(t)
	good := ca.leaf(t, "mx.remote.test")
	wrongName := ca.leaf(t, "other.test")
	otherCA := newTestCA(t)
	stranger := otherCA.leaf(t, "mx.remote.test")

	cases := []struct {
		name    string
		cert    tls.Certificate
		noTLS   bool
		tlsa    string // TLSA record data ("" none)
		secure  bool
		fail    bool // the TLSA lookup fails (SERVFAIL)
		deliver bool
		reason  string
	}{
		{name: "DANE-EE matches the key", cert: good, tlsa: "3 1 1 " + sha256Hex(good.Leaf.RawSubjectPublicKeyInfo), secure: true, deliver: true},
		{name: "DANE-EE ignores the name", cert: wrongName, tlsa: "3 1 1 " + sha256Hex(wrongName.Leaf.RawSubjectPublicKeyInfo), secure: true, deliver: true},
		{name: "DANE-EE another key", cert: stranger, tlsa: "3 1 1 " + sha256Hex(good.Leaf.RawSubjectPublicKeyInfo), secure: true, reason: "matches none of its TLSA records"},
		{name: "DANE-TA the CA", cert: good, tlsa: "2 0 1 " + sha256Hex(ca.cert.Raw), secure: true, deliver: true},
		{name: "DANE-TA a wrong name", cert: wrongName, tlsa: "2 0 1 " + sha256Hex(ca.cert.Raw), secure: true, reason: "matches none"},
		{name: "DANE-TA another CA", cert: stranger, tlsa: "2 0 1 " + sha256Hex(ca.cert.Raw), secure: true, reason: "matches none"},
		{name: "no STARTTLS", noTLS: true, tlsa: "3 1 1 " + sha256Hex(good.Leaf.RawSubjectPublicKeyInfo), secure: true, reason: "does not offer STARTTLS"},
		{name: "not validated: opportunistic", cert: stranger, tlsa: "3 1 1 " + sha256Hex(good.Leaf.RawSubjectPublicKeyInfo), deliver: true},
		{name: "PKIX-EE is not for SMTP: opportunistic", cert: stranger, tlsa: "1 1 1 " + sha256Hex(good.Leaf.RawSubjectPublicKeyInfo), secure: true, deliver: true},
		{name: "no TLSA: opportunistic", cert: stranger, deliver: true},
		{name: "no TLSA, no STARTTLS: plaintext", noTLS: true, deliver: true},
		{name: "the lookup fails", cert: good, fail: true, reason: "could not be looked up"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []fakemx.Option
			if !tc.noTLS {
				cfg := &tls.Config{Certificates: []tls.Certificate{tc.cert}}
				opts = append(opts, func(s *gosmtp.Server) { s.TLSConfig = cfg })
			}
			mx := fakemx.Start(t, opts...)
			_, portText, _ := net.SplitHostPort(mx.Addr)
			port, _ := strconv.Atoi(portText)
			tlsaName := "_" + portText + "._tcp.mx.remote.test"
			zone := dnstest.Zone{"mx.remote.test": {"A 127.0.0.1"}}
			if tc.tlsa != "" {
				zone[tlsaName] = []string{"TLSA " + tc.tlsa}
			}
			dns := dnstest.Start(t, zone)
			if tc.secure {
				dns.Secure(tlsaName)
			}
			if tc.fail {
				dns.Fail(tlsaName, 2)
			}
			r, err := resolve.New(resolve.Config{Server: dns.Addr(), Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			cl := NewClient(ClientConfig{Resolver: r, DANE: tlsaOf{r}, Routes: map[string]string{"remote.test": "mx.remote.test:" + strconv.Itoa(port)}})
			out := cl.Send(sendCtx(t), msgOf(&mail.Envelope{From: "s@example.test"}, rcptsOf("a@remote.test"), testBody))
			got := mx.Transactions()
			if tc.deliver {
				if !out[0].OK() || len(got) != 1 || got[0].TLS == tc.noTLS && !tc.noTLS {
					t.Fatalf("want delivered: %+v, %d transactions", out[0], len(got))
				}
				return
			}
			if !out[0].Temporary() || out[0].Status != mail.StatusTLSFailed || !strings.Contains(out[0].Text, tc.reason) {
				t.Fatalf("want deferred 4.7.5 (%s): %+v", tc.reason, out[0])
			}
			for _, tx := range got {
				if tx.DataSeen {
					t.Fatal("the message was sent to a host its DANE policy refused")
				}
			}
		})
	}
}
