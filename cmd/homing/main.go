// Command homing runs a Homing mail node (`homing serve`), administers one
// (`homing ctl`) and verifies a data directory offline (`homing check`).
// See README.md.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/homing-mail/homing/ctl"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "ctl":
		return ctl.Main(args[1:], os.Stdin, stdout, stderr, os.Getenv)
	case "dev":
		return runDev(args[1:], stdout, stderr)
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "homing: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: homing COMMAND [flags]

commands:
  serve     run a node (homing serve --help lists every setting; --check-config
            checks a configuration and exits; homing.conf.example annotates them)
  dev       run a local cluster of real processes: 1 frontend, 2 backends (homing dev --help)
  ctl       administer a running node through its admin API (homing ctl --help)
  check     verify a data directory offline, and --repair what is damaged (homing check --help)
  version   print the version, the Go version and the commit it was built from
`)
}
