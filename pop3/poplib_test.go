package pop3

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// debianPython is Debian's interpreter: poplib is in its standard library,
// and the python3 first on PATH may be another one.
const debianPython = "/usr/bin/python3"

// poplibMessages are stored for the poplib scenarios: a plain one, one
// with lines that begin with dots, and one with an empty body.
var poplibMessages = []struct{ ID, Raw string }{
	{"101", msg1},
	{"102", msg2},
	{"103", "From: dave@example.net\r\nSubject: empty body\r\n\r\n"},
}

// runPoplib runs one scenario of testdata/poplib_scenarios.py against ts
// and fails with its output unless it printed "ok".
func runPoplib(t *testing.T, ts *testServer, cert *testCert, scenario string) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Fatalf("%s is needed (Debian's python3; .ci/run installs it): %v", debianPython, err)
	}
	spec := map[string]any{"user": alice, "password": alicePW, "port": port(t, ts.addr)}
	if ts.tlsAddr != "" {
		spec["tls_port"] = port(t, ts.tlsAddr)
	}
	if cert != nil {
		spec["cafile"] = cert.pemFile
	}
	var msgs []map[string]string
	for _, m := range poplibMessages {
		msgs = append(msgs, map[string]string{"id": m.ID, "raw": m.Raw})
	}
	spec["messages"] = msgs
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(file, js, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, debianPython, "testdata/poplib_scenarios.py", scenario, file).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("poplib scenario %s: %v\n%s", scenario, err, out)
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a.Port
}

func startPoplibServer(t *testing.T, cfg Config) *testServer {
	ts := startServer(t, cfg)
	for _, m := range poplibMessages {
		ts.be.add(alice, m.ID, m.Raw)
	}
	return ts
}

func TestPoplibReadsListsAndDeletes(t *testing.T) {
	ts := startPoplibServer(t, Config{})
	runPoplib(t, ts, nil, "plain")
	waitUnlocked(t, ts.be, alice)
	if ids := ts.be.ids(alice); !slices.Equal(ids, []string{"102", "103"}) {
		t.Errorf("after poplib's DELE 1 and QUIT the maildrop has %v", ids)
	}
}

func TestPoplibOverStls(t *testing.T) {
	cert := newTestCert(t)
	ts := startPoplibServer(t, Config{TLSConfig: cert.server})
	runPoplib(t, ts, cert, "stls")
	if ids := ts.be.ids(alice); len(ids) != 3 {
		t.Errorf("maildrop %v", ids)
	}
}

func TestPoplibOverImplicitTLS(t *testing.T) {
	cert := newTestCert(t)
	ts := startPoplibServer(t, Config{TLSConfig: cert.server})
	runPoplib(t, ts, cert, "pop3s")
	waitUnlocked(t, ts.be, alice)
	if ids := ts.be.ids(alice); !slices.Equal(ids, []string{"101", "102"}) {
		t.Errorf("after poplib's DELE 3 and QUIT the maildrop has %v", ids)
	}
}

func TestPoplibAuthPlain(t *testing.T) {
	ts := startPoplibServer(t, Config{})
	runPoplib(t, ts, nil, "auth-plain")
}

func TestPoplibSeesAuthAndInUseCodes(t *testing.T) {
	ts := startPoplibServer(t, Config{})
	runPoplib(t, ts, nil, "refusals")
	if ids := ts.be.ids(alice); len(ids) != 3 {
		t.Errorf("maildrop %v", ids)
	}
}
