package cert

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServerLoadsFilesMakesSelfSignedOrNothing(t *testing.T) {
	if c, err := Server("", "", ""); c != nil || err != nil {
		t.Fatalf("Server with nothing = %v, %v; want no TLS", c, err)
	}
	ss, err := Server("", "", "mx.example.test")
	if err != nil || len(ss.Certificates) != 1 {
		t.Fatalf("self-signed: %v, %v", ss, err)
	}
	leaf, err := x509.ParseCertificate(ss.Certificates[0].Certificate[0])
	if err != nil || leaf.VerifyHostname("mx.example.test") != nil {
		t.Fatalf("self-signed certificate is not for mx.example.test: %v", err)
	}

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	key, _ := x509.MarshalECPrivateKey(ss.Certificates[0].PrivateKey.(*ecdsa.PrivateKey))
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: key}), 0o600)
	loaded, err := Server(certFile, keyFile, "ignored.example")
	if err != nil || len(loaded.Certificates) != 1 || string(loaded.Certificates[0].Certificate[0]) != string(leaf.Raw) {
		t.Fatalf("Server from files = %v, %v", loaded, err)
	}

	if _, err := Server(filepath.Join(dir, "missing.pem"), keyFile, ""); err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Fatalf("missing certificate file: %v, want an error naming --tls-cert", err)
	}
}

func TestSourceReloadsAndAnswersMembersWithTheirCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	write := func(host string) []byte {
		c, err := SelfSigned(host)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
		os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600)
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: key}), 0o600)
		return c.Certificate[0]
	}
	first := write("a.test")
	src, err := NewSource(certFile, keyFile, "")
	if err != nil || src.SelfSigned() {
		t.Fatalf("NewSource: %v", err)
	}
	member := &tls.Config{}
	cfg := src.Config("member.invalid", member)
	got, _ := cfg.GetCertificate(nil)
	if string(got.Certificate[0]) != string(first) {
		t.Fatal("not the file's certificate")
	}
	second := write("b.test")
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, _ := cfg.GetCertificate(nil); string(got.Certificate[0]) != string(second) {
		t.Fatal("Reload did not take the new files")
	}
	os.WriteFile(certFile, []byte("junk"), 0o600)
	if err := src.Reload(); err == nil {
		t.Fatal("a broken file reloaded")
	}
	if got, _ := cfg.GetCertificate(nil); string(got.Certificate[0]) != string(second) {
		t.Fatal("a failed reload changed the certificate")
	}
	if c, _ := cfg.GetConfigForClient(&tls.ClientHelloInfo{ServerName: "member.invalid"}); c != member {
		t.Fatal("a member's server name did not get the member configuration")
	}
	if c, _ := cfg.GetConfigForClient(&tls.ClientHelloInfo{ServerName: "mx.example.test"}); c != nil {
		t.Fatal("another server name got the member configuration")
	}
	ss, err := NewSource("", "", "mx.test")
	if err != nil || !ss.SelfSigned() || ss.Reload() != nil {
		t.Fatalf("self-signed source: %v", err)
	}
}

func TestSetReplacesTheCertificateOfNewHandshakes(t *testing.T) {
	src, err := NewSource("", "", "mx.test")
	if err != nil || !src.SelfSigned() {
		t.Fatalf("NewSource: %v", err)
	}
	cfg := src.Config("", nil)
	c, err := SelfSigned("acme.test")
	if err != nil {
		t.Fatal(err)
	}
	src.Set(&c)
	if got, _ := cfg.GetCertificate(nil); got != &c || src.SelfSigned() {
		t.Fatal("Set did not make the new certificate current")
	}
	if src.Reload() != nil {
		t.Fatal("Reload without files failed")
	}
	if got, _ := cfg.GetCertificate(nil); got != &c {
		t.Fatal("Reload without files replaced a set certificate")
	}
}
