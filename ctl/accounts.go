package ctl

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/homing-mail/homing/admin"
)

func (c *command) cmdAccounts(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "add", "create":
			return c.cmdAccountAdd(args[1:])
		case "show", "get":
			return c.cmdAccountShow(args[1:])
		case "delete", "remove", "rm":
			return c.cmdAccountDelete(args[1:])
		case "import":
			return c.cmdAccountImport(args[1:])
		case "password":
			return c.cmdAccountPassword(args[1:])
		case "quota":
			return c.cmdAccountQuota(args[1:])
		case "disable":
			return c.cmdAccountState(args[1:], true)
		case "enable":
			return c.cmdAccountState(args[1:], false)
		}
		if !strings.HasPrefix(args[0], "-") {
			return unknownSub("accounts", args[0], "add", "show", "delete", "import", "password", "quota", "disable", "enable")
		}
	}
	_, done, err := c.prepare(c.flags("accounts"), args, 0, 0, "accounts: unexpected argument")
	if err != nil {
		return err
	}
	defer done()
	as, err := c.client.Accounts(c.ctx)
	if err != nil {
		return c.describe(thing{name: "accounts"}, err)
	}
	return c.out(as, func(w io.Writer) {
		fmt.Fprintln(w, "ADDRESS\tMESSAGES\tUSED\tQUOTA\tPARTITION\tOWNER\tCREATED\tSTATE")
		for _, a := range as {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", cell(a.Address), a.Messages, formatSize(a.UsedBytes),
				formatQuota(a.QuotaBytes), a.Partition, cell(a.Owner), formatTime(a.Created), accountState(a))
		}
	})
}

func (c *command) cmdAccountAdd(args []string) error {
	fs := c.flags("accounts add")
	password := fs.String("password", "", "the account's password")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	quota := fs.String("quota", "", "quota, bytes or with a unit (500MiB, 2G)")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("accounts add needs exactly one ADDRESS")
	}
	if *password != "" && *fromStdin {
		return usagef("give only one of --password and --password-stdin")
	}
	req := admin.CreateAccount{Address: pos[0], Password: *password}
	if *quota != "" {
		q, err := parseSize(*quota)
		if err != nil {
			return usagef("--quota: %v", err)
		}
		req.QuotaBytes = q
	}
	if *fromStdin {
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return fmt.Errorf("reading the password from stdin: %v", err)
		}
		req.Password = strings.TrimRight(line, "\r\n")
		if req.Password == "" {
			return fmt.Errorf("the password read from stdin is empty")
		}
	}
	generated := req.Password == ""
	if generated {
		req.Password = newPassword()
	}
	done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	a, err := c.client.CreateAccount(c.ctx, req)
	if err != nil {
		return c.describe(accountThing(req.Address), err)
	}
	if c.json && generated {
		// The API never returns a password; the generated one is added
		// so that scripts can read it.
		return c.out(struct {
			admin.Account
			Password string `json:"password"`
		}{a, req.Password}, nil)
	}
	return c.out(a, func(w io.Writer) {
		fmt.Fprintf(w, "created account %s (partition %d", cell(a.Address), a.Partition)
		if a.Owner != "" {
			fmt.Fprintf(w, ", owner %s", cell(a.Owner))
		}
		fmt.Fprintln(w, ")")
		if generated {
			fmt.Fprintf(w, "password: %s\n", req.Password)
		}
	})
}

// accountState is "disabled" or "active".
func accountState(a admin.Account) string {
	if a.Disabled {
		return "disabled"
	}
	return "active"
}

// newPassword returns 128 random bits as 22 URL-safe characters.
func newPassword() string {
	b := make([]byte, 16)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *command) cmdAccountShow(args []string) error {
	pos, done, err := c.prepare(c.flags("accounts show"), args, 1, 1, "accounts show needs exactly one ADDRESS")
	if err != nil {
		return err
	}
	defer done()
	a, err := c.client.Account(c.ctx, pos[0])
	if err != nil {
		return c.describe(accountThing(pos[0]), err)
	}
	return c.out(a, func(w io.Writer) {
		fmt.Fprintf(w, "address:\t%s\n", cell(a.Address))
		fmt.Fprintf(w, "messages:\t%d\n", a.Messages)
		fmt.Fprintf(w, "used:\t%s\n", formatSize(a.UsedBytes))
		fmt.Fprintf(w, "quota:\t%s\n", formatQuota(a.QuotaBytes))
		fmt.Fprintf(w, "partition:\t%d\n", a.Partition)
		fmt.Fprintf(w, "owner:\t%s\n", cell(a.Owner))
		fmt.Fprintf(w, "created:\t%s\n", formatTime(a.Created))
		fmt.Fprintf(w, "state:\t%s\n", accountState(a))
	})
}

func (c *command) cmdAccountDelete(args []string) error {
	pos, done, err := c.prepare(c.flags("accounts delete"), args, 1, 1, "accounts delete needs exactly one ADDRESS")
	if err != nil {
		return err
	}
	defer done()
	if err := c.client.DeleteAccount(c.ctx, pos[0]); err != nil {
		return c.describe(accountThing(pos[0]), err)
	}
	if !c.json {
		fmt.Fprintf(c.stdout, "deleted account %s\n", cell(pos[0]))
	}
	return nil
}

const accountsHelp = `usage: homing ctl accounts
       homing ctl accounts add ADDR [--password P | --password-stdin] [--quota SIZE]
       homing ctl accounts show ADDR
       homing ctl accounts delete ADDR
       homing ctl accounts import FILE|-
       homing ctl accounts password ADDR [--password P | --password-stdin] [--old-password OLD | --old-password-stdin]
       homing ctl accounts quota ADDR SIZE
       homing ctl accounts disable|enable ADDR

Accounts live on the backend that owns their partition; any node answers.

  accounts               every account: messages, space used, quota,
                         partition, owner, creation time
  accounts add ADDR      create an account in a local domain; without
                         --password a password is generated and printed
                         (with --json it is in the answer)
  accounts show ADDR     one account
  accounts delete ADDR   delete an account and its mailbox
  accounts import FILE   create the accounts of FILE (- for stdin), one a line:
                         ADDR PASSWORD [QUOTA] or ADDR HASH [QUOTA], HASH an
                         argon2id ($argon2id$...) or bcrypt ($2b$...) hash,
                         bare or in braces; # comments and blank lines are
                         skipped; the whole file is checked before anything
                         is sent; existing accounts are skipped; 4 at a time,
                         progress on stderr
  accounts password ADDR set a new password (generated and printed when none
                         is given); with the current one (--old-password) as
                         the account itself, without the admin token
  accounts quota ADDR SIZE
                         change the quota (0 or unlimited: none); shows the
                         space used
  accounts disable ADDR  refuse its mail (550 5.2.1) and its logins; enable
                         undoes it; what it holds is kept

flags:
  --password P       the password (visible in process lists: prefer the next)
  --password-stdin   read the password from the first line of stdin
  --quota SIZE       bytes, or with a unit: 500MiB, 2G (binary units)
  --old-password OLD, --old-password-stdin
                     the current password, to change it as the account

Passwords must pass the node's policy (--min-password-length, 8 by
default, and never the account's name): the answer says why not.

examples:
  homing ctl accounts add alice@example.test --quota 1G
  printf '%s\n' "$PASSWORD" | homing ctl accounts add bob@example.test --password-stdin
  homing ctl accounts import users.txt
  homing ctl accounts --json | jq -r '.[].address'
  homing ctl accounts password alice@example.test
  homing ctl accounts quota alice@example.test 2G
  homing ctl accounts disable mallory@example.test
`
