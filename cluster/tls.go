package cluster

// Security of the cluster channel.
//
// protoactor's remote is plaintext and unauthenticated by default: anyone
// who reaches its port can send any message, Stop included, to any actor
// (../shared/design.md). Homing therefore runs it over mutual TLS 1.3
// (RFC 8446) whose keys all follow from the cluster secret, so that the
// nodes need no certificate files:
//
//   - The CA key is an Ed25519 key (RFC 8032) whose 32-byte seed is
//     HKDF-SHA256 (RFC 5869) of the secret, with info
//     "homing cluster CA v1" + 0x00 + cluster name and no salt. The same
//     secret under another cluster name gives an unrelated CA.
//   - The CA certificate (RFC 5280) is built from fixed fields only: serial
//     1, subject "Homing cluster CA" with the cluster name as OU, validity
//     2000-01-01..2100-01-01 UTC, a subject key id computed from the public
//     key. Ed25519 signatures are deterministic, so every node builds the
//     byte-identical certificate; it is never sent, each node trusts its own
//     copy.
//   - At every start a node makes a fresh Ed25519 leaf key and signs its own
//     leaf certificate with the CA key: random 128-bit serial, valid from a
//     day before now (clock skew) to the CA's end, usable for both TLS
//     server and client authentication, with the single DNS name
//     clusterServerName. The leaf key never leaves the process.
//   - The gRPC server requires a client certificate and verifies it
//     against the CA (tls.RequireAndVerifyClientCert). The client verifies
//     the server's chain against the CA and the fixed name
//     clusterServerName: peers are addressed by IP, so their address cannot
//     be checked, but setting tls.Config.ServerName keeps Go's whole
//     standard verification (chain, validity, key usage, name) without
//     InsecureSkipVerify. gRPC keeps a ServerName that is set rather than
//     using the dialled authority (credentials.tlsCreds.ClientHandshake).
//   - TLS 1.3 only, both ways.
//
// What this gives: only holders of the secret can connect to a node's
// channel, or accept a node's connections; traffic is encrypted and
// authenticated. Every holder of the secret is a full member: membership
// in the cluster is the only authorisation. Anyone may still open a TCP
// connection and fail the handshake.
//
// The secret must be high-entropy: an active attacker who connects gets a
// leaf certificate signed by the CA and can test guesses of the secret
// offline against its signature. StartChannel refuses secrets shorter
// than MinSecretLen bytes; use a random one (openssl rand -hex 32).

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

const (
	// caLabel is the HKDF info prefix of the CA key; the cluster name
	// follows it after a zero byte. Changing it changes every CA.
	caLabel = "homing cluster CA v1"
	// clusterServerName is the only DNS name of every leaf certificate and
	// the name every client verifies. .invalid is reserved (RFC 2606), so
	// it can never be a real host.
	clusterServerName = "channel.homing.invalid"
	// leafBackdate is how long before now a leaf certificate becomes valid,
	// so that peers whose clocks run behind accept it.
	leafBackdate = 24 * time.Hour
)

// MinSecretLen is the shortest cluster secret StartChannel accepts, in
// bytes (see the comment at the top of tls.go for why it must be long).
const MinSecretLen = 16

// The fixed validity window of the derived CA certificate, in Unix
// seconds: 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z.
const (
	caNotBeforeUnix = 946684800
	caNotAfterUnix  = 4102444800
)

// clusterCA is the certificate authority derived from a cluster secret.
// It is immutable after deriveCA; safe for concurrent use.
type clusterCA struct {
	key  ed25519.PrivateKey
	cert *x509.Certificate
	pool *x509.CertPool
}

// deriveCA derives the CA of (secret, clusterName). Equal inputs give an
// equal key and a byte-identical certificate on every node.
func deriveCA(secret, clusterName string) (*clusterCA, error) {
	if secret == "" {
		return nil, errors.New("cluster: empty secret")
	}
	seed, err := hkdf.Key(sha256.New, []byte(secret), nil, caLabel+"\x00"+clusterName, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("cluster: derive CA key: %w", err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	ski := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Homing cluster CA", OrganizationalUnit: []string{clusterName}},
		NotBefore:             time.Unix(caNotBeforeUnix, 0).UTC(),
		NotAfter:              time.Unix(caNotAfterUnix, 0).UTC(),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// Set explicitly so that the certificate does not depend on how a
		// Go release computes a default (it changed in Go 1.25).
		SubjectKeyId: ski[:20],
	}
	// Ed25519 signing reads no randomness; the reader is only a formality.
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("cluster: build CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cluster: parse CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &clusterCA{key: key, cert: cert, pool: pool}, nil
}

// issueLeaf makes a fresh key and a leaf certificate for it signed by the
// CA, valid from leafBackdate before now. name goes into the subject's
// common name (for logs only; nothing checks it).
func (ca *clusterCA) issueLeaf(name string, now time.Time) (tls.Certificate, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: leaf key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: leaf serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-leafBackdate),
		NotAfter:     ca.cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{clusterServerName},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: sign leaf: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: parse leaf: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// serverTLS is the channel server's configuration: TLS 1.3, leaf as its
// certificate, a client certificate from the CA required.
func (ca *clusterCA) serverTLS(leaf tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{leaf},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
	}
}

// clientTLS is the channel client's configuration: TLS 1.3, leaf as its
// client certificate, the server verified against the CA and
// clusterServerName.
func (ca *clusterCA) clientTLS(leaf tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{leaf},
		RootCAs:      ca.pool,
		ServerName:   clusterServerName,
	}
}
