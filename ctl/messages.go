package ctl

import (
	"fmt"
	"io"
)

func (c *command) cmdMessages(args []string) error {
	pos, done, err := c.prepare(c.flags("messages"), args, 1, 1, "messages needs exactly one ADDRESS")
	if err != nil {
		return err
	}
	defer done()
	ms, err := c.client.Messages(c.ctx, pos[0])
	if err != nil {
		return c.describe(accountThing(pos[0]), err)
	}
	return c.out(ms, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tFOLDER\tSIZE\tRECEIVED\tFROM\tSUBJECT")
		for _, m := range ms {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(m.ID), cell(m.Folder), formatSize(m.Size),
				formatTime(m.Received), clip(m.From, 40), clip(m.Subject, 60))
		}
	})
}

func (c *command) cmdMessage(args []string) error {
	pos, done, err := c.prepare(c.flags("message"), args, 2, 2, "message needs ADDRESS and ID")
	if err != nil {
		return err
	}
	defer done()
	raw, err := c.client.RawMessage(c.ctx, pos[0], pos[1])
	if err != nil {
		return c.describe(thing{name: "message " + pos[1] + " in " + pos[0], key: pos[1], hint: "homing ctl messages " + pos[0] + " lists them"}, err)
	}
	_, err = c.stdout.Write(raw)
	return err
}

const messagesHelp = `usage: homing ctl messages ADDR

The messages stored in the mailbox of account ADDR: id, folder, size, when
it was received, sender and subject.

example:
  homing ctl messages demo@example.test
`

const messageHelp = `usage: homing ctl message ADDR ID

Writes the stored RFC 5322 bytes of message ID of account ADDR to stdout,
as they are (no --json: the message is the output).

examples:
  homing ctl message demo@example.test 01JD5X8Q6M0000000000000000
  homing ctl message demo@example.test 01JD5X8Q6M0000000000000000 > saved.eml
`
