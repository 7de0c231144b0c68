package ctl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/homing-mail/homing/admin"
)

// Provisioning for the whole cluster: domains, aliases, and an account's
// password, quota and state (accounts password|quota|disable|enable).

func (c *command) cmdDomains(args []string) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "add":
			return c.domainChange("domains add", args[1:], true)
		case "remove", "delete", "rm":
			return c.domainChange("domains remove", args[1:], false)
		case "list":
			args = args[1:]
		default:
			return unknownSub("domains", args[0], "list", "add", "remove")
		}
	}
	_, done, err := c.prepare(c.flags("domains"), args, 0, 0, "domains: unexpected argument")
	if err != nil {
		return err
	}
	defer done()
	ds, err := c.client.Domains(c.ctx)
	if err != nil {
		return c.describe(thing{name: "domains"}, err)
	}
	return c.out(ds, func(w io.Writer) {
		fmt.Fprintln(w, "DOMAIN\tSTATE")
		for _, d := range ds {
			fmt.Fprintf(w, "%s\t%s\n", cell(d.Domain), cell(d.State))
		}
	})
}

func (c *command) domainChange(name string, args []string, add bool) error {
	pos, done, err := c.prepare(c.flags(name), args, 1, 1, name+" needs exactly one DOMAIN")
	if err != nil {
		return err
	}
	defer done()
	if add {
		d, err := c.client.AddDomain(c.ctx, pos[0])
		if err != nil {
			return c.describe(thing{name: "domain " + pos[0]}, err)
		}
		return c.out(d, func(w io.Writer) {
			fmt.Fprintf(w, "added domain %s on every node\n", cell(d.Domain))
		})
	}
	if err := c.client.RemoveDomain(c.ctx, pos[0]); err != nil {
		return c.describe(thing{}, err)
	}
	if !c.json {
		fmt.Fprintf(c.stdout, "removed domain %s from every node\n", cell(pos[0]))
	}
	return nil
}

func (c *command) cmdAliases(args []string) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "add":
			return c.aliasAdd(args[1:])
		case "remove", "delete", "rm":
			return c.aliasRemove(args[1:])
		case "list":
			args = args[1:]
		default:
			return unknownSub("aliases", args[0], "list", "add", "remove")
		}
	}
	_, done, err := c.prepare(c.flags("aliases"), args, 0, 0, "aliases: unexpected argument")
	if err != nil {
		return err
	}
	defer done()
	as, err := c.client.Aliases(c.ctx)
	if err != nil {
		return c.describe(thing{name: "aliases"}, err)
	}
	return c.out(as, func(w io.Writer) {
		fmt.Fprintln(w, "ALIAS\tTARGET")
		for _, a := range as {
			fmt.Fprintf(w, "%s\t%s\n", cell(a.Alias), cell(a.Target))
		}
	})
}

func (c *command) aliasAdd(args []string) error {
	pos, done, err := c.prepare(c.flags("aliases add"), args, 2, 2, "aliases add needs ALIAS and TARGET")
	if err != nil {
		return err
	}
	defer done()
	a, err := c.client.AddAlias(c.ctx, admin.Alias{Alias: pos[0], Target: pos[1]})
	if err != nil {
		return c.describe(thing{}, err)
	}
	return c.out(a, func(w io.Writer) {
		fmt.Fprintf(w, "alias %s -> %s\n", cell(a.Alias), cell(a.Target))
	})
}

func (c *command) aliasRemove(args []string) error {
	pos, done, err := c.prepare(c.flags("aliases remove"), args, 1, 1, "aliases remove needs exactly one ALIAS")
	if err != nil {
		return err
	}
	defer done()
	if err := c.client.RemoveAlias(c.ctx, pos[0]); err != nil {
		return c.describe(thing{name: "alias " + pos[0], hint: "homing ctl aliases lists them"}, err)
	}
	if !c.json {
		fmt.Fprintf(c.stdout, "removed alias %s\n", cell(pos[0]))
	}
	return nil
}

// cmdAccountPassword: `accounts password ADDR [--password P |
// --password-stdin] [--old-password OLD | --old-password-stdin]`. With
// the old password it is the account's own change (basic auth, no token
// needed); without it the administrator's.
func (c *command) cmdAccountPassword(args []string) error {
	fs := c.flags("accounts password")
	password := fs.String("password", "", "the new password")
	fromStdin := fs.Bool("password-stdin", false, "read the new password from the first line of stdin")
	old := fs.String("old-password", "", "the account's current password: change it as the account, not the administrator")
	oldStdin := fs.Bool("old-password-stdin", false, "read the current password from the first line of stdin (the new one from the second with --password-stdin)")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("accounts password needs exactly one ADDRESS")
	}
	if *password != "" && *fromStdin {
		return usagef("give only one of --password and --password-stdin")
	}
	if *old != "" && *oldStdin {
		return usagef("give only one of --old-password and --old-password-stdin")
	}
	in := bufio.NewReader(c.stdin)
	readLine := func(what string) (string, error) {
		line, err := in.ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("reading %s from stdin: %v", what, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", fmt.Errorf("%s read from stdin is empty", what)
		}
		return line, nil
	}
	if *oldStdin {
		if *old, err = readLine("the current password"); err != nil {
			return err
		}
	}
	if *fromStdin {
		if *password, err = readLine("the new password"); err != nil {
			return err
		}
	}
	generated := *password == ""
	if generated {
		*password = newPassword()
	}
	done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	addr := pos[0]
	if *old != "" {
		err = c.client.ChangePassword(c.ctx, addr, *old, *password)
		var ae *admin.Error
		if errors.As(err, &ae) && ae.Status == 401 {
			return fmt.Errorf("account %s: the current password is wrong", addr)
		}
	} else {
		err = c.client.SetPassword(c.ctx, addr, *password)
	}
	if err != nil {
		return c.describe(accountThing(addr), err)
	}
	if c.json {
		out := map[string]string{"address": addr}
		if generated {
			out["password"] = *password
		}
		return c.out(out, nil)
	}
	fmt.Fprintf(c.stdout, "password of %s changed\n", cell(addr))
	if generated {
		fmt.Fprintf(c.stdout, "password: %s\n", *password)
	}
	return nil
}

// cmdAccountQuota: `accounts quota ADDR SIZE` (0 or "unlimited": none).
func (c *command) cmdAccountQuota(args []string) error {
	pos, done, err := c.prepare(c.flags("accounts quota"), args, 2, 2, "accounts quota needs ADDRESS and SIZE (0 or unlimited for none)")
	if err != nil {
		return err
	}
	defer done()
	var q int64
	if s := strings.ToLower(pos[1]); s != "unlimited" && s != "none" {
		if q, err = parseSize(pos[1]); err != nil {
			return usagef("accounts quota: %v", err)
		}
	}
	a, err := c.client.UpdateAccount(c.ctx, pos[0], admin.AccountUpdate{QuotaBytes: &q})
	if err != nil {
		return c.describe(accountThing(pos[0]), err)
	}
	return c.out(a, func(w io.Writer) {
		fmt.Fprintf(w, "quota of %s: %s (%s used)\n", cell(a.Address), formatQuota(a.QuotaBytes), formatSize(a.UsedBytes))
	})
}

// cmdAccountState: `accounts disable|enable ADDR`.
func (c *command) cmdAccountState(args []string, disable bool) error {
	name := "accounts enable"
	if disable {
		name = "accounts disable"
	}
	pos, done, err := c.prepare(c.flags(name), args, 1, 1, name+" needs exactly one ADDRESS")
	if err != nil {
		return err
	}
	defer done()
	a, err := c.client.UpdateAccount(c.ctx, pos[0], admin.AccountUpdate{Disabled: &disable})
	if err != nil {
		return c.describe(accountThing(pos[0]), err)
	}
	return c.out(a, func(w io.Writer) {
		if a.Disabled {
			fmt.Fprintf(w, "account %s disabled: its mail is refused (550 5.2.1) and so are its logins\n", cell(a.Address))
		} else {
			fmt.Fprintf(w, "account %s enabled\n", cell(a.Address))
		}
	})
}

const domainsHelp = `usage: homing ctl domains [list]
       homing ctl domains add DOMAIN
       homing ctl domains remove DOMAIN

The cluster's local domains: mail for their addresses is delivered to
accounts; every node applies a change at once, without a restart (--domains
only seeds a new node). A domain is removed in two steps: marked removing
(still local) until every live node has confirmed, then gone; until then it
answers "waits for NODE to confirm" and the domain stays local everywhere:
run the removal again. A domain with accounts or aliases is not removed.

examples:
  homing ctl domains
  homing ctl domains add example.org
  homing ctl domains remove example.org
`

const aliasesHelp = `usage: homing ctl aliases [list]
       homing ctl aliases add ALIAS TARGET
       homing ctl aliases remove ALIAS

Aliases deliver the mail of an address of a local domain to an account
(TARGET in a local domain must be an account), or forward it to an address
elsewhere. *@DOMAIN is the catch-all of DOMAIN: it takes the mail of every
address of DOMAIN that no account or alias has.

examples:
  homing ctl aliases add postmaster@example.test admin@example.test
  homing ctl aliases add '*@example.test' admin@example.test
  homing ctl aliases add bob@example.test bob@elsewhere.example
  homing ctl aliases remove postmaster@example.test
`
