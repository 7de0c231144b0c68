package interop

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// debianPython is Debian's interpreter: the python3 first on PATH may be
// another one.
const debianPython = "/usr/bin/python3"

// TestImaplibScenarios runs testdata/imaplib_scenarios.py against one real
// node, each scenario as a subtest with an account of its own: LOGIN and
// AUTHENTICATE PLAIN (and their refusals), ID, NAMESPACE, ENABLE,
// CAPABILITY before and after login; LIST with SPECIAL-USE and RETURN
// STATUS, STATUS, CREATE/RENAME/DELETE/SUBSCRIBE in a hierarchy,
// SELECT/EXAMINE, GETQUOTAROOT and SETQUOTA; APPEND with flags and a date
// (APPENDUID, TRYCREATE, TOOBIG), FETCH of FLAGS, UID, INTERNALDATE,
// RFC822.SIZE, ENVELOPE, BODYSTRUCTURE and BODY.PEEK[] sections and
// partials, BINARY, \Seen set by BODY[] only; STORE (+/-FLAGS, .SILENT,
// UID STORE); SEARCH and UID SEARCH by flags, headers, text, size, dates,
// OR, NOT and sets; COPY (COPYUID), MOVE, EXPUNGE, UID EXPUNGE, CLOSE and
// UNSELECT; IDLE seeing another session's APPEND, STORE and EXPUNGE and a
// delivery over SMTP. Every scenario also sends bad input, which must get
// BAD or NO with its response code while the session goes on.
func TestImaplibScenarios(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		t.Fatalf("%s is needed (Debian's python3; .ci/run installs it): %v", debianPython, err)
	}
	n := startNode(t, "imaplib")
	script, err := filepath.Abs("testdata/imaplib_scenarios.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []string{"login", "folders", "append-fetch", "store-search", "copy-move-expunge", "idle", "bad-input"} {
		t.Run(sc, func(t *testing.T) {
			user := sc + "@example.test"
			const password = "imaplib-password-1"
			n.createAccount(t, user, password)
			spec, err := json.Marshal(map[string]any{"port": port(t, n.p.IMAP), "smtp_port": port(t, n.p.SMTP), "user": user, "password": password})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "spec.json")
			if err := os.WriteFile(file, spec, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, debianPython, script, sc, file).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "ok" {
				t.Fatalf("imaplib scenario %s: %v\n%s", sc, err, out)
			}
		})
	}
}
