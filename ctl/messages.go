package ctl

import (
	"fmt"
	"io"
	"strings"

	"github.com/homing-mail/homing/admin"
)

func (c *command) cmdMessages(args []string) error {
	fs := c.flags("messages")
	folder := fs.String("folder", "", "only this folder's messages")
	pos, done, err := c.prepare(fs, args, 1, 1, "messages needs exactly one ADDRESS")
	if err != nil {
		return err
	}
	defer done()
	ms, err := c.client.QueryMessages(c.ctx, pos[0], admin.MessageQuery{Folder: *folder})
	if err != nil {
		if *folder != "" {
			return c.describe(thing{name: "folder " + *folder + " in " + pos[0], key: *folder, hint: "homing ctl folders " + pos[0] + " lists them"}, err)
		}
		return c.describe(accountThing(pos[0]), err)
	}
	return c.out(ms, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tFOLDER\tFLAGS\tSIZE\tRECEIVED\tFROM\tSUBJECT")
		for _, m := range ms {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(m.ID), cell(m.Folder), flagsCell(m.Flags), formatSize(m.Size),
				formatTime(m.Received), clip(m.From, 40), clip(m.Subject, 60))
		}
	})
}

// flagsCell shows a message's flags: "-" for none.
func flagsCell(flags []string) string {
	if len(flags) == 0 {
		return "-"
	}
	return cell(strings.Join(flags, ","))
}

func (c *command) cmdFolders(args []string) error {
	pos, done, err := c.prepare(c.flags("folders"), args, 1, 1, "folders needs exactly one ADDRESS")
	if err != nil {
		return err
	}
	defer done()
	fs, err := c.client.Folders(c.ctx, pos[0])
	if err != nil {
		return c.describe(accountThing(pos[0]), err)
	}
	return c.out(fs, func(w io.Writer) {
		fmt.Fprintln(w, "FOLDER\tMESSAGES\tUNSEEN\tSPECIAL-USE\tUIDVALIDITY\tUIDNEXT")
		for _, f := range fs {
			use := f.SpecialUse
			if use == "" {
				use = "-"
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%d\t%d\n", cell(f.Name), f.Messages, f.Unseen, cell(use), f.UIDValidity, f.UIDNext)
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

const messagesHelp = `usage: homing ctl messages ADDR [--folder FOLDER]

The messages stored in the mailbox of account ADDR: id, folder, flags
(\Seen, \Flagged, ... ; - for none), size, when it was received, sender
and subject, oldest first; --folder: only that folder's (INBOX, Archive,
a/b, ...).

examples:
  homing ctl messages demo@example.test
  homing ctl messages demo@example.test --folder Archive
`

const foldersHelp = `usage: homing ctl folders ADDR

The folders of account ADDR: name, messages, unseen messages, special use
(RFC 6154: \Sent, \Drafts, \Trash, \Junk, \Archive), UIDVALIDITY and
UIDNEXT.

example:
  homing ctl folders demo@example.test
`

const messageHelp = `usage: homing ctl message ADDR ID

Writes the stored RFC 5322 bytes of message ID of account ADDR to stdout,
as they are (no --json: the message is the output).

examples:
  homing ctl message demo@example.test 01JD5X8Q6M0000000000000000
  homing ctl message demo@example.test 01JD5X8Q6M0000000000000000 > saved.eml
`
