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
	raw = crlf(raw)
	done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	id, err := c.client.Submit(c.ctx, *user, *password, to, raw)
	if err != nil {
		return c.describe(thing{name: "submit"}, err)
	}
	return c.out(admin.SubmitResponse{ID: id}, func(w io.Writer) {
		fmt.Fprintf(w, "queued %s\n", cell(id))
	})
}

// crlf gives every bare LF of raw a CR before it: a file written on Unix
// has LF line ends, SMTP and the API want CRLF. Lines that end in CRLF
// already are left alone, and so is a bare CR (the API refuses it: it is
// not a line end anywhere this file could come from).
func crlf(raw []byte) []byte {
	n := 0
	for i, b := range raw {
		if b == '\n' && (i == 0 || raw[i-1] != '\r') {
			n++
		}
	}
	if n == 0 {
		return raw
	}
	out := make([]byte, 0, len(raw)+n)
	for i, b := range raw {
		if b == '\n' && (i == 0 || raw[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, b)
	}
	return out
}

const submitHelp = `usage: homing ctl submit --user ADDR --password P --to ADDR[,ADDR] [FILE|-]

Submits an RFC 5322 message (header and body, from FILE or stdin) as the
account ADDR, through the node's API (POST /api/v1/submit, authenticated
with the account's password, limited like SMTP AUTH). The node queues it
and answers its queue id. A file with Unix (LF) line ends is sent with CRLF,
as the API requires.

flags:
  --user ADDR       the account that sends
  --password P      its password (default $HOMING_PASSWORD; the variable
                    keeps it out of process lists)
  --to ADDR,...     recipients (may be repeated)

examples:
  HOMING_PASSWORD=... homing ctl submit --user demo@example.test --to you@example.net note.eml
  printf 'Subject: hi\n\nhello\n' | homing ctl submit --user demo@example.test --to a@example.test -
`
