package ctl

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/homing-mail/homing/admin"
)

func (c *command) cmdSubmit(args []string) error {
	fs := c.flags("submit")
	user := fs.String("user", "", "the account's address")
	password := fs.String("password", c.password, "the account's password")
	var to []string
	fs.Func("to", "recipients, comma-separated (may be repeated)", func(v string) error {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				to = append(to, a)
			}
		}
		return nil
	})
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *user == "":
		return usagef("submit needs --user")
	case *password == "":
		return usagef("submit needs --password (or $HOMING_PASSWORD)")
	case len(to) == 0:
		return usagef("submit needs --to")
	case len(pos) > 1:
		return usagef("submit takes at most one FILE")
	}
	var raw []byte
	if len(pos) == 0 || pos[0] == "-" {
		raw, err = io.ReadAll(io.LimitReader(c.stdin, admin.DefaultSubmitLimit))
	} else {
		raw, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return fmt.Errorf("reading the message: %v", err)
	}
	if len(raw) == 0 {
		return fmt.Errorf("the message is empty")
	}
	done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	id, err := c.client.Submit(c.ctx, *user, *password, to, raw)
	if err != nil {
		return c.describe("submit", err)
	}
	return c.out(admin.SubmitResponse{ID: id}, func(w io.Writer) {
		fmt.Fprintf(w, "queued %s\n", cell(id))
	})
}
