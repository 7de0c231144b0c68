// Package pebble runs Let's Encrypt's ACME test server, pebble (Debian's
// package pebble, which .ci/run installs), on loopback for one test: its
// own configuration, its own HTTPS certificate, its challenge lookups
// sent to the test's DNS server (testkit/dnstest) and never to the
// system's resolver. Validation is real (PEBBLE_VA_ALWAYS_VALID=0): the
// CA connects to the HTTP-01 port it is given, on the address the test
// zone gives each name. It imports nothing of Homing.
package pebble

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds the wait for pebble to listen (it makes its CA's
// keys first: about a second).
const startTimeout = 30 * time.Second

// Options shape a pebble.
type Options struct {
	// HTTPPort is the port pebble validates HTTP-01 challenges on (the
	// node's --acme-http port; RFC 8555 §8.3 says 80).
	HTTPPort int
	// DNS is the "127.0.0.1:port" of the server pebble asks for the
	// names' addresses (-dnsserver).
	DNS string
	// Validity is the lifetime of the certificates it issues
	// (certificateValidityPeriod, whole seconds); 0: pebble's default
	// (five years).
	Validity time.Duration
}

// Server is a running pebble.
type Server struct {
	// Directory is the ACME directory URL (RFC 8555 §7.1.1).
	Directory string
	// CAFile is a PEM file of the certificate pebble's HTTPS serves (for
	// --acme-ca-roots).
	CAFile string
	// Roots holds the root of the certificates pebble issues, RootsPEM
	// the same as PEM (fetched from its management interface).
	Roots    *x509.CertPool
	RootsPEM []byte

	cmd      *exec.Cmd
	mgmtPort int
	done     chan struct{}
	mu       sync.Mutex
	log      strings.Builder
	stop     sync.Once
}

// Start runs pebble until the test ends. Without pebble installed the
// test fails, saying how to install it.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("pebble")
	if err != nil {
		t.Fatalf("pebble (the ACME test server, Debian package pebble) is not installed: apt-get install pebble (.ci/run does): %v", err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "https-cert.pem"), filepath.Join(dir, "https-key.pem")
	if err := writeHTTPSCert(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	var s *Server
	for try := 0; ; try++ {
		// Ports are taken and freed for pebble's config: another process
		// may take one meanwhile, and then pebble exits; try again.
		if s, err = start(bin, dir, certFile, keyFile, opt); err == nil || try == 4 {
			break
		}
		t.Logf("pebble: %v; trying other ports", err)
	}
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("pebble's log:\n%s", s.Log())
		}
	})
	// pebble logs its addresses just before it listens on them: poll
	// both with a deadline until they answer.
	if err := s.fetchRoots(certFile, s.mgmt()); err != nil {
		t.Fatalf("pebble: %v", err)
	}
	return s
}

func start(bin, dir, certFile, keyFile string, opt Options) (*Server, error) {
	acmePort, err := freePort()
	if err != nil {
		return nil, err
	}
	mgmtPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", acmePort),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       opt.HTTPPort,
		"tlsPort":                        0,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"certificateValidityPeriod":      uint64(opt.Validity / time.Second),
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		return nil, err
	}
	args := []string{"-config", cfgFile}
	if opt.DNS != "" {
		args = append(args, "-dnsserver", opt.DNS)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // validate at once, no random sleeps
		"PEBBLE_VA_ALWAYS_VALID=0", // really connect to the challenge listener
		"PEBBLE_AUTHZREUSE=0",      // every order validates again (renewals too)
	)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Directory: fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort), CAFile: certFile, cmd: cmd,
		done: make(chan struct{})}
	listening := make(chan struct{})
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			if s.log.Len() < 1<<20 {
				s.log.WriteString(line + "\n")
			}
			s.mu.Unlock()
			if strings.Contains(line, "ACME directory available at") {
				once.Do(func() { close(listening) })
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-listening:
	case <-s.done:
		return nil, fmt.Errorf("pebble exited at start:\n%s", s.Log())
	case <-timer.C:
		s.Stop()
		return nil, fmt.Errorf("pebble did not listen within %v:\n%s", startTimeout, s.Log())
	}
	s.mgmtPort = mgmtPort
	return s, nil
}

// Stop ends pebble (the CA is then down: what a node does without it).
func (s *Server) Stop() {
	s.stop.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}

// Log is what pebble wrote so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func (s *Server) mgmt() string { return fmt.Sprintf("127.0.0.1:%d", s.mgmtPort) }

// fetchRoots gets the issuing root from the management interface
// (GET /roots/0; pebble makes a new CA at every start).
func (s *Server) fetchRoots(certFile, mgmt string) error {
	caPEM, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	get := func(u string) ([]byte, error) {
		for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			res, err := c.Do(req)
			if err == nil {
				b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
				res.Body.Close()
				if err != nil || res.StatusCode != http.StatusOK {
					return nil, fmt.Errorf("GET %s: %s %v", u, res.Status, err)
				}
				return b, nil
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("GET %s: %w", u, err)
			}
			t := time.NewTimer(wait) // polling with a deadline: pebble is about to listen
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return nil, fmt.Errorf("pebble exited:\n%s", s.Log())
			}
		}
	}
	if _, err := get(s.Directory); err != nil {
		return err
	}
	b, err := get("https://" + mgmt + "/roots/0")
	if err != nil {
		return fmt.Errorf("fetching the root: %w", err)
	}
	s.Roots = x509.NewCertPool()
	if !s.Roots.AppendCertsFromPEM(b) {
		return fmt.Errorf("the root is not PEM: %q", b)
	}
	s.RootsPEM = b
	return nil
}

// freePort is a loopback port free now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// writeHTTPSCert makes the self-signed certificate of pebble's HTTPS
// listeners, for 127.0.0.1 and localhost.
func writeHTTPSCert(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pebble test server"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
}
