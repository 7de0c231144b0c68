package ctl

import (
	"fmt"
	"io"
	"strings"

	"github.com/homing-mail/homing/admin"
)

func (c *command) cmdDKIM(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return c.cmdDKIMList(args)
	}
	switch args[0] {
	case "list":
		return c.cmdDKIMList(args[1:])
	case "generate":
		return c.cmdDKIMGenerate(args[1:])
	case "dns":
		return c.cmdDKIMDNS(args[1:])
	}
	return unknownSub("dkim", args[0], "list", "generate", "dns")
}

func (c *command) cmdDKIMList(args []string) error {
	_, done, err := c.prepare(c.flags("dkim"), args, 0, 0, "dkim list: unexpected argument")
	if err != nil {
		return err
	}
	defer done()
	ks, err := c.client.DKIMKeys(c.ctx)
	if err != nil {
		return c.describe(thing{name: "DKIM keys"}, err)
	}
	return c.out(ks, func(w io.Writer) {
		fmt.Fprintln(w, "DOMAIN\tSELECTOR\tALGORITHM\tSTATE\tCREATED")
		for _, k := range ks {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", cell(k.Domain), cell(k.Selector), cell(k.Algorithm), cell(k.State), cell(k.Created))
		}
	})
}

func (c *command) cmdDKIMGenerate(args []string) error {
	fs := c.flags("dkim generate")
	selector := fs.String("selector", "", "the new key's selector (default: named by the date)")
	algorithm := fs.String("algorithm", "", "rsa (RSA-2048, the default) or ed25519 (RFC 8463)")
	pos, done, err := c.prepare(fs, args, 1, 1, "dkim generate needs one DOMAIN")
	if err != nil {
		return err
	}
	defer done()
	if *algorithm != "" && *algorithm != "rsa" && *algorithm != "ed25519" {
		return usagef("--algorithm %q: rsa or ed25519", *algorithm)
	}
	k, err := c.client.GenerateDKIM(c.ctx, pos[0], admin.DKIMGenerate{Selector: *selector, Algorithm: *algorithm})
	if err != nil {
		return c.describe(thing{name: "DKIM key " + *selector + " of " + pos[0], hint: "homing ctl dkim lists the keys"}, err)
	}
	recs, err := c.client.DKIMRecords(c.ctx, pos[0])
	if err != nil {
		return c.describe(thing{name: "DKIM records of " + pos[0]}, err)
	}
	return c.out(k, func(w io.Writer) {
		fmt.Fprintf(w, "made the %s key %s of %s; it signs from now on (older %s keys are retired)\n",
			k.Algorithm, k.Selector, k.Domain, k.Algorithm)
		fmt.Fprintln(w, "publish its record:")
		for _, r := range recs.Records {
			if r.Selector == k.Selector {
				fmt.Fprintln(w, zoneLine(r))
			}
		}
	})
}

func (c *command) cmdDKIMDNS(args []string) error {
	pos, done, err := c.prepare(c.flags("dkim dns"), args, 1, 1, "dkim dns needs one DOMAIN")
	if err != nil {
		return err
	}
	defer done()
	recs, err := c.client.DKIMRecords(c.ctx, pos[0])
	if err != nil {
		return c.describe(thing{name: "DKIM records of " + pos[0], hint: "homing ctl dkim generate " + pos[0] + " makes a key"}, err)
	}
	return c.out(recs, func(w io.Writer) {
		if len(recs.Records) == 0 {
			fmt.Fprintf(w, "; %s has no DKIM key yet: homing ctl dkim generate %s (or one is made when it first sends)\n", pos[0], pos[0])
		}
		for _, r := range recs.Records {
			if r.State == "retired" {
				fmt.Fprintf(w, "; retired: keep until the mail it signed has been verified (a week), then remove\n")
			}
			fmt.Fprintln(w, zoneLine(r))
		}
	})
}

// zoneLine is r in zone-file syntax, the value in strings of at most 255
// bytes (RFC 1035 §3.3.14; RFC 6376 §3.6.2.2 joins them).
func zoneLine(r admin.DNSRecord) string {
	var parts []string
	for v := r.Value; v != ""; {
		n := min(len(v), 255)
		parts = append(parts, `"`+v[:n]+`"`)
		v = v[n:]
	}
	return r.Name + ". IN " + r.Type + " " + strings.Join(parts, " ")
}

const dkimHelp = `usage: homing ctl dkim [list]
       homing ctl dkim generate DOMAIN [--selector S] [--algorithm rsa|ed25519]
       homing ctl dkim dns DOMAIN

The DKIM keys that sign the mail of the local domains' senders. Every node
that relays has them: a key made on one node reaches every member.

  list          every key: domain, selector, algorithm, active or retired
  generate      make a new key for DOMAIN (a local domain). It signs from now
                on, and the domain's older key of the same algorithm is
                retired: this is how a key is rotated. Without --selector the
                selector is named by the date. Without a key, one is made
                when the domain first sends mail.
  dns           the TXT records to publish for DOMAIN, in zone-file syntax
                (--json: name, type, value)

examples:
  homing ctl dkim generate example.com
  homing ctl dkim generate example.com --algorithm ed25519 --selector ed1
  homing ctl dkim dns example.com
`
