package ctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
)

// importMaxLine bounds one line of an import file.
const importMaxLine = 64 << 10

// importAccount is one account of an import file and its line number.
type importAccount struct {
	line int
	req  admin.CreateAccount
}

// importSummary is the --json answer of `accounts import`.
type importSummary struct {
	Accounts int         `json:"accounts"` // accounts in the file
	Created  int         `json:"created"`
	Exists   []batchItem `json:"exists"` // skipped: the address has an account
	Failed   []batchItem `json:"failed"`
}

// bcryptHash is a bcrypt hash in modular crypt form: $2$, $2a$, $2b$, $2x$
// or $2y$, then the cost.
var bcryptHash = regexp.MustCompile(`^\$2[abxy]?\$[0-9]{2}\$`)

// isHash reports whether s is a password hash the API imports as it is
// (argon2id PHC string, bcrypt) rather than a password.
func isHash(s string) bool {
	return strings.HasPrefix(s, "$argon2id$") || bcryptHash.MatchString(s)
}

// parseImport reads an import file: one account a line, "ADDRESS
// SECRET [QUOTA]", fields separated by blanks. SECRET is a password, or a
// hash ($argon2id$... or bcrypt $2b$...), bare or in braces ({$2b$...});
// QUOTA is a size (500MiB). Blank lines and lines starting with # are
// skipped. A password therefore holds no blanks, and one that looks like a
// hash is taken as one. The first malformed line, or an address given
// twice, is a *usageError naming name and the line number; the secret
// never appears in it.
func parseImport(r io.Reader, name string) ([]importAccount, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), importMaxLine)
	var out []importAccount
	seen := map[string]int{}
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		bad := func(format string, a ...any) error {
			return usagef("%s:%d: %s", name, n, fmt.Sprintf(format, a...))
		}
		f := strings.Fields(text)
		if len(f) < 2 || len(f) > 3 {
			return nil, bad("want ADDRESS PASSWORD|HASH [QUOTA], got %d %s", len(f), plural(len(f), "field", "fields"))
		}
		addr, err := mail.ParseAddress(f[0])
		if err != nil {
			return nil, bad("address %q: %v", sanitize(f[0]), err)
		}
		if first, ok := seen[addr]; ok {
			return nil, bad("%s is already on line %d", sanitize(f[0]), first)
		}
		seen[addr] = n
		req := admin.CreateAccount{Address: f[0]}
		switch secret := f[1]; {
		case strings.HasPrefix(secret, "{") && strings.HasSuffix(secret, "}"):
			inner := secret[1 : len(secret)-1]
			if !isHash(inner) {
				return nil, bad("{...} must hold an argon2id ($argon2id$) or bcrypt ($2b$) hash")
			}
			req.PasswordHash = inner
		case isHash(secret):
			req.PasswordHash = secret
		default:
			req.Password = secret
		}
		if len(f) == 3 {
			q, err := parseSize(f[2])
			if err != nil {
				return nil, bad("quota: %v", err)
			}
			req.QuotaBytes = q
		}
		out = append(out, importAccount{line: n, req: req})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, usagef("%s:%d: line longer than %d bytes", name, n+1, importMaxLine)
		}
		return nil, fmt.Errorf("reading %s: %v", name, err)
	}
	return out, nil
}

// cmdAccountImport is `accounts import FILE|-`: it checks the whole file
// first (nothing is sent if a line is malformed), then creates the
// accounts batchWorkers at a time with a progress display. An address
// that has an account already (409) is reported as "exists" and skipped;
// any other failure is listed on stderr with its line and makes the exit
// code 1.
func (c *command) cmdAccountImport(args []string) error {
	pos, err := c.parse(c.flags("accounts import"), args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("accounts import needs exactly one FILE (or - for stdin)")
	}
	var r io.Reader
	name := pos[0]
	if name == "-" {
		r, name = c.stdin, "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("accounts import: %v", err)
		}
		defer f.Close()
		r = f
	}
	accts, err := parseImport(r, name)
	if err != nil {
		return err
	}
	done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	outcomes, errs := c.batch(len(accts), func(ctx context.Context, i int) (outcome, error) {
		_, err := c.client.CreateAccount(ctx, accts[i].req)
		var ae *admin.Error
		switch {
		case err == nil:
			return outcomeOK, nil
		case errors.As(err, &ae) && ae.Status == http.StatusConflict:
			return outcomeSkipped, nil
		}
		return outcomeFailed, err
	})

	sum := importSummary{Accounts: len(accts), Exists: []batchItem{}, Failed: []batchItem{}}
	for i, a := range accts {
		item := batchItem{Line: a.line, Address: a.req.Address}
		switch outcomes[i] {
		case outcomeOK:
			sum.Created++
		case outcomeSkipped:
			sum.Exists = append(sum.Exists, item)
		case outcomeFailed:
			item.Error = sanitize(c.describe(accountThing(a.req.Address), errs[i]).Error())
			sum.Failed = append(sum.Failed, item)
			fmt.Fprintf(c.stderr, "homing ctl: %s:%d: %s\n", name, a.line, item.Error)
		}
	}
	if c.json {
		if err := c.out(sum, nil); err != nil {
			return err
		}
	} else {
		for _, e := range sum.Exists {
			fmt.Fprintf(c.stdout, "%s: exists\n", cell(e.Address))
		}
		fmt.Fprintln(c.stdout, importLine(sum))
	}
	if len(sum.Failed) > 0 {
		return errReported
	}
	return nil
}

// importLine is the summary of `accounts import` for people.
func importLine(s importSummary) string {
	switch {
	case s.Accounts == 0:
		return "no accounts in the file"
	case s.Created == s.Accounts:
		return fmt.Sprintf("imported %d %s", s.Created, plural(s.Created, "account", "accounts"))
	}
	return fmt.Sprintf("imported %d of %d accounts (%d existing skipped, %d failed)", s.Created, s.Accounts, len(s.Exists), len(s.Failed))
}
