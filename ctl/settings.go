package ctl

import (
	"fmt"
	"io"
	"strings"

	"github.com/homing-mail/homing/admin"
)

func (c *command) cmdSettings(args []string) error {
	if len(args) > 0 && args[0] == "set" {
		return c.cmdSettingsSet(args[1:])
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return unknownSub("settings", args[0], "set")
	}
	_, done, err := c.prepare(c.flags("settings"), args, 0, 0, "settings: unexpected argument")
	if err != nil {
		return err
	}
	defer done()
	s, err := c.client.Settings(c.ctx)
	if err != nil {
		return c.describe(thing{name: "settings"}, err)
	}
	return c.printSettings(s)
}

func (c *command) printSettings(s admin.Settings) error {
	return c.out(s, func(w io.Writer) {
		fmt.Fprintf(w, "name:\t%s\n", cell(s.Name))
		fmt.Fprintf(w, "roles:\t%s\n", cell(strings.Join(s.Roles, ",")))
		fmt.Fprintf(w, "queue mode:\t%s\n", cell(s.QueueMode))
	})
}

func (c *command) cmdSettingsSet(args []string) error {
	fs := c.flags("settings set")
	node := fs.String("node", "", "change this member's settings")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("settings set needs a KEY and a VALUE (queue-mode MODE)")
	}
	var up admin.SettingsUpdate
	switch pos[0] {
	case "queue-mode", "queueMode":
		if !admin.ValidQueueMode(pos[1]) {
			return usagef("queue mode %q: must be locally, locally-for-others or remotely", pos[1])
		}
		up.QueueMode = &pos[1]
	default:
		return usagef("unknown setting %q (queue-mode)", pos[0])
	}
	done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	var s admin.Settings
	if *node != "" {
		s, err = c.client.NodeUpdateSettings(c.ctx, *node, up)
	} else {
		s, err = c.client.UpdateSettings(c.ctx, up)
	}
	if err != nil {
		what := "settings"
		if *node != "" {
			what = "settings of " + *node
		}
		return c.describe(thing{name: what}, err)
	}
	return c.printSettings(s)
}

const settingsHelp = `usage: homing ctl settings
       homing ctl settings set queue-mode MODE [--node N]

The node's run-time settings: its name, roles and queue processing mode.
"set queue-mode" changes the mode at once, saves it in the data directory
(it wins over --queue-mode at the next start) and gossips it to the cluster:

  locally              mail made here is queued and processed here
  locally-for-others   the same, and this node takes the mail of members in
                       mode remotely
  remotely             mail made here goes to a locally-for-others member;
                       on any failure it is processed here

flags:
  --node N   change member N (through the node asked)

examples:
  homing ctl settings
  homing ctl settings set queue-mode remotely --node be1
`
