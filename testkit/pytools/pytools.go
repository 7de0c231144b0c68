// Package pytools runs the outside tools the trust tests compare Homing
// with, from Debian's packages under /usr/bin/python3 (the python3 first
// on PATH may be another interpreter without them): dkimpy
// (python3-dkim) to verify and sign DKIM, asking a loopback DNS server
// (dnstest) for keys. .ci/run installs them. It imports nothing of Homing
// but dnstest.
package pytools

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/homing-mail/homing/testkit/dnstest"
)

// Python is Debian's interpreter, where python3-dkim and python3-spf are.
const Python = "/usr/bin/python3"

// DKIMVerify runs dkimpy's verification of every DKIM-Signature of raw,
// with the keys in srv's zone. It returns whether all passed (and there
// was at least one), and dkimpy's complaint when not.
func DKIMVerify(t testing.TB, srv *dnstest.Server, raw []byte) (bool, string) {
	t.Helper()
	script := srv.PythonResolver() + `
import sys, dkim
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
n = len([l for l in msg.split(b"\r\n\r\n")[0].split(b"\r\n") if l.lower().startswith(b"dkim-signature:")])
try:
    ok = n > 0 and all(d.verify(idx=i, dnsfunc=dnstest_txt) for i in range(n))
except dkim.ValidationError as e:
    ok = False
    print(e, file=sys.stderr)
print("pass" if ok else "fail")
`
	cmd := exec.Command(Python, "-c", script)
	cmd.Stdin = bytes.NewReader(raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkimpy: %v\n%s%s (.ci/run installs python3-dkim)", err, out, stderr.Bytes())
	}
	return strings.TrimSpace(string(out)) == "pass", stderr.String()
}
