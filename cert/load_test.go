package cert

import (
	"crypto/ecdsa"
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
