package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
)

const usage = `usage: homing ctl [--admin ADDR] [--token TOKEN] [--json] COMMAND [ARGS]

global flags (also accepted after the command):
  --admin ADDR     admin API address (default $HOMING_ADMIN, else 127.0.0.1:8025)
  --token TOKEN    admin bearer token (default $HOMING_TOKEN)
  --json           print the API's JSON, indented
  --timeout D      give up after D (default 1m; in a batch, each request)

commands:
  cluster                              members and partition owners
  nodes                                every member: roles, queue mode, state,
                                       queue (total/deferred/held), oldest entry,
                                       partitions (open/total), actors, error
  journey ID                           the path of one message across the nodes
  accounts                             list accounts
  accounts add ADDR [--password P | --password-stdin] [--quota SIZE]
                                       create an account (no password: one is
                                       generated and printed); SIZE is bytes or
                                       e.g. 500MiB, 2G
  accounts show ADDR                   one account
  accounts delete ADDR                 delete an account
  accounts import FILE|-               create the accounts listed in FILE (or
                                       stdin), one a line: ADDR PASSWORD [QUOTA]
                                       or ADDR HASH [QUOTA] (HASH: $argon2id$...
                                       or bcrypt $2...; {HASH} also works);
                                       # comments and blank lines are skipped;
                                       existing accounts are skipped; 4 at a
                                       time, progress on stderr
  messages ADDR                        list an account's messages
  message ADDR ID                      write a stored message's raw bytes to stdout
  queue [--cluster | --node N]         list this node's queue (--cluster: every
                                       member's, with a NODE column; --node:
                                       one member's)
  queue show ID                        one queued message and its recipients
  queue retry|hold|release|delete ID... [--node N]
                                       act on messages (--node: in N's queue)
  queue retry --all [--cluster | --node N]
                                       retry every deferred message of this node
                                       (--cluster: of every member; --node: of N),
                                       progress on stderr
  settings                             this node's settings
  settings set queue-mode MODE [--node N]
                                       MODE: locally, locally-for-others,
                                       remotely (--node: change member N)
  rules [server|cluster]               a rule set (server: this node; cluster: every member)
  rules set server|cluster FILE|-      replace it with a JSON array of rules
  account-rules ADDR                   an account's rules
  account-rules set ADDR FILE|-        replace them
  partitions                           the partitions whose actors run on this node
  actors                               actor counts per kind on this node
  stats                                counters and delivery latency
  submit --user ADDR --password P --to ADDR[,ADDR] [FILE|-]
                                       submit a message as an account (from FILE,
                                       or stdin; password default $HOMING_PASSWORD)
`

// Main runs `homing ctl` with the arguments after "ctl" and returns the
// exit code: 0 on success, 1 when the operation failed, 2 on a usage
// error. It reads stdin only for --password-stdin, `submit -`, `rules set
// ... -` and `accounts import -`; getenv gives $HOMING_ADMIN, $HOMING_TOKEN
// and $HOMING_PASSWORD (os.Getenv in the binary, a map in tests).
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &command{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now, tty: isTerminal(stderr)}
	c.admin = getenv("HOMING_ADMIN")
	if c.admin == "" {
		c.admin = "127.0.0.1:8025"
	}
	c.token = getenv("HOMING_TOKEN")
	c.password = getenv("HOMING_PASSWORD")
	c.timeout = time.Minute

	err := c.run(args)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "homing ctl: %s\n\n%s", ue.msg, usage)
		return 2
	case errors.Is(err, errReported):
		return 1
	default:
		fmt.Fprintf(stderr, "homing ctl: %s\n", sanitize(err.Error()))
		return 1
	}
}

// usageError is a command line that does not make sense: exit 2 with
// the usage text.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// errReported: the failure was already written to stderr (one line per
// failed item); exit 1 without another line.
var errReported = mail.PermanentError("reported")

// command is one invocation: the global flags and the I/O.
type command struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	admin    string
	token    string
	json     bool
	timeout  time.Duration
	password string // $HOMING_PASSWORD, default of submit --password

	client *admin.Client
	ctx    context.Context

	now func() time.Time // the clock (progress rendering, ages)
	tty bool             // stderr is a terminal: progress as a redrawn bar
}

// flags returns a flag set for a (sub)command with the global flags on it,
// so they may follow the command too.
func (c *command) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.admin, "admin", c.admin, "admin API address")
	fs.StringVar(&c.token, "token", c.token, "admin bearer token")
	fs.BoolVar(&c.json, "json", c.json, "print the API's JSON")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "give up after this long")
	return fs
}

// parse parses args with flags and positional arguments in any order
// ("accounts add ADDR --quota 1G"); "--" ends the flags.
func (c *command) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		consumed := args[:len(args)-len(rest)]
		if n := len(consumed); n > 0 && consumed[n-1] == "--" && !flagValue(fs, consumed) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagValue reports whether the "--" that ends consumed was the value
// of the flag before it (--password --) rather than the end of flags.
func flagValue(fs *flag.FlagSet, consumed []string) bool {
	if len(consumed) < 2 {
		return false
	}
	prev := consumed[len(consumed)-2]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// run parses the global flags and dispatches the command.
func (c *command) run(args []string) error {
	fs := c.flags("homing ctl")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error()}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("no command given")
	}
	cmd, rest := rest[0], rest[1:]
	if cmd == "help" {
		return flag.ErrHelp
	}
	handlers := map[string]func([]string) error{
		"cluster":  c.cmdCluster,
		"nodes":    c.cmdNodes,
		"journey":  c.cmdJourney,
		"accounts": c.cmdAccounts,
		"account":  c.cmdAccounts,
		"messages": c.cmdMessages,
		"message":  c.cmdMessage,
		"queue":    c.cmdQueue,
		"settings": c.cmdSettings,
		"actors":   c.cmdActors,
		"stats":    c.cmdStats,
		"submit":   c.cmdSubmit,

		"rules":         c.cmdRules,
		"account-rules": c.cmdAccountRules,
		"partitions":    c.cmdPartitions,
	}
	h, ok := handlers[cmd]
	if !ok {
		return usagef("unknown command %q", cmd)
	}
	return h(rest)
}

// connect makes the client and the context once the flags are final.
func (c *command) connect() (context.CancelFunc, error) {
	if c.admin == "" {
		return nil, usagef("--admin must not be empty")
	}
	if c.timeout <= 0 {
		return nil, usagef("--timeout must be positive")
	}
	c.client = admin.NewClient(c.admin, c.token)
	if _, err := url.Parse(c.client.BaseURL); err != nil {
		return nil, usagef("--admin %q: %v", c.admin, err)
	}
	// A transport of our own, closed at the end, leaves no idle
	// connection behind.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c.client.HTTP = &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	c.ctx = ctx
	return func() { cancel(); tr.CloseIdleConnections() }, nil
}

// prepare parses a command's flags and positional arguments, checks their
// count (min..max, max < 0: unbounded) and connects.
func (c *command) prepare(fs *flag.FlagSet, args []string, min, max int, what string) ([]string, context.CancelFunc, error) {
	pos, err := c.parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return nil, nil, usagef("%s", what)
	}
	done, err := c.connect()
	if err != nil {
		return nil, nil, err
	}
	return pos, done, nil
}

// describe turns a failure into the line for stderr: the server's message
// prefixed with what was asked about ("queue 01ABC: not found") unless the
// message names it already (its last word: the id or address), a hint on
// 401, and the address for connection failures.
func (c *command) describe(what string, err error) error {
	var ae *admin.Error
	if errors.As(err, &ae) {
		msg := ae.Message
		key := what[strings.LastIndexByte(what, ' ')+1:]
		if what != "" && !strings.Contains(msg, key) {
			msg = what + ": " + msg
		}
		if ae.Status == http.StatusUnauthorized && what != "submit" {
			msg += " (give the admin token with --token or $HOMING_TOKEN)"
		}
		return errors.New(msg)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("admin API at %s: no answer within %s", c.client.BaseURL, c.timeout)
		}
		return fmt.Errorf("admin API at %s: %v", c.client.BaseURL, ue.Err)
	}
	if what != "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	return err
}

// out prints v as indented JSON in --json mode, else runs human.
func (c *command) out(v any, human func(w io.Writer)) error {
	if c.json {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	human(tw)
	return tw.Flush()
}
