package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/homing-mail/homing/admin"
)

// cmdRules: `rules [server|cluster]`, `rules set server|cluster FILE|-`.
func (c *command) cmdRules(args []string) error {
	pos, done, err := c.prepare(c.flags("rules"), args, 0, 3, "usage: rules [server|cluster] | rules set server|cluster FILE|-")
	if err != nil {
		return err
	}
	defer done()
	switch {
	case len(pos) == 0 || (len(pos) == 1 && pos[0] != "set"):
		scope := "server"
		if len(pos) == 1 {
			scope = pos[0]
		}
		rs, err := c.client.Rules(c.ctx, scope)
		if err != nil {
			return c.describe(thing{name: scope + " rules"}, err)
		}
		return c.printRules(rs)
	case len(pos) == 3 && pos[0] == "set":
		raw, err := c.readInput(pos[2])
		if err != nil {
			return err
		}
		rs, err := c.client.SetRules(c.ctx, pos[1], raw)
		if err != nil {
			return c.describe(thing{name: pos[1] + " rules"}, err)
		}
		return c.printRules(rs)
	default:
		return usagef("usage: rules [server|cluster] | rules set server|cluster FILE|-")
	}
}

// cmdAccountRules: `account-rules ADDR`, `account-rules set ADDR FILE|-`.
func (c *command) cmdAccountRules(args []string) error {
	pos, done, err := c.prepare(c.flags("account-rules"), args, 1, 3, "usage: account-rules ADDR | account-rules set ADDR FILE|-")
	if err != nil {
		return err
	}
	defer done()
	switch {
	case len(pos) == 1:
		rs, err := c.client.AccountRules(c.ctx, pos[0])
		if err != nil {
			return c.describe(accountThing(pos[0]), err)
		}
		return c.printRules(rs)
	case len(pos) == 3 && pos[0] == "set":
		raw, err := c.readInput(pos[2])
		if err != nil {
			return err
		}
		rs, err := c.client.SetAccountRules(c.ctx, pos[1], raw)
		if err != nil {
			return c.describe(accountThing(pos[1]), err)
		}
		return c.printRules(rs)
	default:
		return usagef("usage: account-rules ADDR | account-rules set ADDR FILE|-")
	}
}

// readInput reads a file, or stdin for "-", as a JSON rule array.
func (c *command) readInput(name string) (json.RawMessage, error) {
	var raw []byte
	var err error
	if name == "-" {
		raw, err = io.ReadAll(io.LimitReader(c.stdin, admin.DefaultBodyLimit))
	} else {
		raw, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%s: not JSON (want an array of rules)", name)
	}
	return raw, nil
}

// printRules shows a rule set: its JSON, indented (rules are data).
func (c *command) printRules(rs admin.RuleSet) error {
	if c.json {
		return c.out(rs, nil)
	}
	var v any
	if err := json.Unmarshal(rs.Rules, &v); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	if rs.Version != 0 {
		fmt.Fprintf(c.stdout, "# %s rules, version %d\n", rs.Scope, rs.Version)
	}
	fmt.Fprintf(c.stdout, "%s\n", b)
	return nil
}

const rulesHelp = `usage: homing ctl rules [server|cluster]
       homing ctl rules set server|cluster FILE|-

A rule set as JSON: server (this node's, the default) or cluster (set once,
applied by every member; its version is shown). "set" replaces the set with
the JSON array of rules in FILE (- for stdin); an invalid rule is refused
with its reason and nothing changes. README.md, "Rules", describes the
conditions and actions.

examples:
  homing ctl rules cluster
  homing ctl rules set server rules.json
  echo '[]' | homing ctl rules set cluster -
`

const accountRulesHelp = `usage: homing ctl account-rules ADDR
       homing ctl account-rules set ADDR FILE|-

The rules of account ADDR (run at delivery: folder, redirect, forward,
vacation...), as JSON; "set" replaces them with the JSON array in FILE (-
for stdin).

examples:
  homing ctl account-rules demo@example.test
  homing ctl account-rules set demo@example.test vacation.json
`
