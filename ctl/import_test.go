package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
)

const argonHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"

// createdRequests returns the CreateAccount requests the fake got, by
// address (a batch sends them in any order).
func createdRequests(f *admintest.Fake) map[string]admin.CreateAccount {
	out := map[string]admin.CreateAccount{}
	for _, c := range f.CallsTo("CreateAccount") {
		req := c.Args[0].(admin.CreateAccount)
		out[req.Address] = req
	}
	return out
}

func TestAccountsImport(t *testing.T) {
	e := newTestEnv(t, "tok")
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "accounts.txt")
	content := strings.Join([]string{
		"# exported from the old server",
		"",
		"alice@example.test   s3cret",
		"bob@example.test " + argonHash + " 500MiB",
		"\tcarol@example.test {" + string(bc) + "}\r", // CRLF file, tab before
		"dave@example.test " + string(bc),
		"demo@example.test whatever 1G", // exists
		"erin@example.test $2cool 64k",  // a password that is not a hash
		"   # indented comment",
	}, "\n")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}

	r := e.run("", "accounts", "import", file)
	if r.code != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r.stdout != "demo@example.test: exists\nimported 5 of 6 accounts (1 existing skipped, 0 failed)\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	progressLines(t, r.stderr, 6)

	got := createdRequests(e.fake)
	want := map[string]admin.CreateAccount{
		"alice@example.test": {Address: "alice@example.test", Password: "s3cret"},
		"bob@example.test":   {Address: "bob@example.test", PasswordHash: argonHash, QuotaBytes: 500 << 20},
		"carol@example.test": {Address: "carol@example.test", PasswordHash: string(bc)},
		"dave@example.test":  {Address: "dave@example.test", PasswordHash: string(bc)},
		"demo@example.test":  {Address: "demo@example.test", Password: "whatever", QuotaBytes: 1 << 30},
		"erin@example.test":  {Address: "erin@example.test", Password: "$2cool", QuotaBytes: 64 << 10},
	}
	if len(got) != len(want) || len(e.fake.CallsTo("CreateAccount")) != len(want) {
		t.Errorf("%d requests for %d accounts: %+v", len(e.fake.CallsTo("CreateAccount")), len(want), got)
	}
	for addr, w := range want {
		if got[addr] != w {
			t.Errorf("sent %+v, want %+v", got[addr], w)
		}
	}

	// Again, from stdin, with --json: every account exists now.
	r = e.run(content, "accounts", "import", "-", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var sum struct {
		Accounts, Created int
		Exists, Failed    []map[string]any
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Accounts != 6 || sum.Created != 0 || len(sum.Exists) != 6 ||
		sum.Failed == nil || len(sum.Failed) != 0 || sum.Exists[0]["address"] != "alice@example.test" || sum.Exists[0]["line"] != float64(3) {
		t.Errorf("--json summary %s (%v)", r.stdout, err)
	}
}

func TestAccountsImportFailures(t *testing.T) {
	e := newTestEnv(t, "")
	e.fake.Lock()
	e.fake.ErrFor = func(c admintest.Call) error {
		if c.Method == "CreateAccount" && c.Args[0].(admin.CreateAccount).Address == "bad@example.test" {
			return &admin.Error{Status: 400, Message: "passwordHash: not an argon2id or bcrypt hash"}
		}
		return nil
	}
	e.fake.Unlock()
	in := "ok1@example.test pw\ndemo@example.test pw\n\nbad@example.test $argon2id$garbage\nok2@example.test pw\n"
	r := e.run(in, "accounts", "import", "-")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", r.code, r.stderr)
	}
	if r.stdout != "demo@example.test: exists\nimported 2 of 4 accounts (1 existing skipped, 1 failed)\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	failures := regexp.MustCompile(`(?m)^homing ctl: .*$`).FindAllString(r.stderr, -1)
	if !slices.Equal(failures, []string{"homing ctl: stdin:4: account bad@example.test: passwordHash: not an argon2id or bcrypt hash"}) {
		t.Errorf("failures %q", failures)
	}
	if got := createdRequests(e.fake); got["ok1@example.test"].Password != "pw" || got["ok2@example.test"].Password != "pw" {
		t.Errorf("the accounts after the failure were not all sent: %+v", got)
	}

	// Existing accounts alone are not a failure.
	if r := e.run("ok1@example.test pw\n", "accounts", "import", "-"); r.code != 0 || r.stderr != "1/1\n" {
		t.Errorf("only existing accounts: exit %d, stderr %q", r.code, r.stderr)
	}

	// A file that is not there.
	r = e.run("", "accounts", "import", filepath.Join(t.TempDir(), "missing.txt"))
	if r.code != 1 || !strings.HasPrefix(r.stderr, "homing ctl: accounts import: open ") || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.run("# nothing\n\n", "accounts", "import", "-").ok(t)
	if r.stdout != "no accounts in the file\n" {
		t.Errorf("empty import printed %q", r.stdout)
	}
}

// A malformed line stops the import before anything is sent, with its line
// number and without the password.
func TestAccountsImportMalformed(t *testing.T) {
	e := newTestEnv(t, "")
	long := "x@example.test " + strings.Repeat("p", importMaxLine)
	for _, c := range []struct {
		name, in, line string
	}{
		{"one field", "a@example.test pw\nb@example.test\n", "homing ctl: stdin:2: want ADDRESS PASSWORD|HASH [QUOTA], got 1 field"},
		{"four fields", "a@example.test pw 1G extra\n", "homing ctl: stdin:1: want ADDRESS PASSWORD|HASH [QUOTA], got 4 fields"},
		{"no domain", "# c\nnodomain hunter2\n", `homing ctl: stdin:2: address "nodomain": bad address syntax: no @`},
		{"relay syntax", "a%b@example.test hunter2\n", `homing ctl: stdin:1: address "a%b@example.test": relay syntax in address: '@', '%' or '!' in the local part`},
		{"twice", "a@example.test hunter2\n\nA@example.test other\na@example.test hunter3\n", "homing ctl: stdin:4: a@example.test is already on line 1"},
		{"bad quota", "a@example.test hunter2 lots\n", `homing ctl: stdin:1: quota: "lots" is not a size (bytes, or a number with K, M, G, T)`},
		{"braces without a hash", "a@example.test {hunter2}\n", "homing ctl: stdin:1: {...} must hold an argon2id ($argon2id$) or bcrypt ($2b$) hash"},
		{"line too long", "a@example.test hunter2\n" + long + "\n", fmt.Sprintf("homing ctl: stdin:2: line longer than %d bytes", importMaxLine)},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.run(c.in, "accounts", "import", "-")
			r.failed(t, 2, c.line)
			if strings.Contains(r.stderr, "hunter") {
				t.Errorf("the password is in the error: %q", r.stderr)
			}
		})
	}
	if n := len(e.fake.CallsTo("CreateAccount")); n != 0 {
		t.Errorf("%d accounts were sent from malformed files", n)
	}
	e.run("", "accounts", "import").failed(t, 2, "homing ctl: accounts import needs exactly one FILE (or - for stdin)")
}

// The import has exactly four requests in flight: the first four are held
// until all four have arrived, and no fifth arrives meanwhile.
func TestAccountsImportConcurrency(t *testing.T) {
	var mu sync.Mutex
	inFlight, peak, started := 0, 0, 0
	four := make(chan struct{})
	var stuck error
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			inFlight++
			started++
			peak = max(peak, inFlight)
			n := started
			if n == batchWorkers {
				close(four)
			}
			mu.Unlock()
			if n <= batchWorkers {
				select {
				case <-four:
				case <-time.After(10 * time.Second): // a deadline, not a wait: fewer than four at once
					mu.Lock()
					stuck = errors.New("fewer than four requests in flight")
					mu.Unlock()
				}
			}
			h.ServeHTTP(w, r)
			mu.Lock()
			inFlight--
			mu.Unlock()
		})
	}
	e := newTestEnvWrapped(t, "", wrap)
	var in strings.Builder
	for i := range 40 {
		fmt.Fprintf(&in, "u%02d@example.test pw%d\n", i, i)
	}
	r := e.run(in.String(), "accounts", "import", "-")
	if r.code != 0 || r.stdout != "imported 40 accounts\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if stuck != nil {
		t.Fatal(stuck)
	}
	if peak != batchWorkers || started != 40 {
		t.Errorf("peak %d requests in flight (want %d), %d requests (want 40)", peak, batchWorkers, started)
	}
}

func TestIsHash(t *testing.T) {
	for s, want := range map[string]bool{
		argonHash: true,
		"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy": true,
		"$2y$12$abc":   true,
		"$2$05$abc":    true,
		"$2cool":       false,
		"$argon2i$v=1": false,
		"hunter2":      false,
		"":             false,
	} {
		if got := isHash(s); got != want {
			t.Errorf("isHash(%q) = %v, want %v", s, got, want)
		}
	}
}
