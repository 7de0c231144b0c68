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
  --json           print the API's JSON, indented (every listing)
  --timeout D      give up after D (default 1m; in a batch, each request)

commands (homing ctl help COMMAND, or COMMAND --help, explains one with examples):
  cluster                              members and partition owners
  nodes                                every member: roles, queue mode, state,
                                       queue (total/deferred/held), oldest entry,
                                       partitions (open/total), actors, error
  ready                                whether the node does its whole job now
                                       (GET /readyz), and why not
  journey ID                           the path of one message across the nodes
  journey [--from ADDR] [--to ADDR] [--message-id ID] [--since D] [--until D] [--limit N]
                                       find messages in every node's journal
                                       (D: 24h, or an RFC 3339 time)
  accounts                             list accounts
  accounts add ADDR [--password P | --password-stdin] [--quota SIZE]
                                       create an account (no password: one is
                                       generated and printed); SIZE is bytes or
                                       e.g. 500MiB, 2G
  accounts show ADDR                   one account
  accounts delete ADDR                 delete an account
  accounts password ADDR [--password P | --password-stdin] [--old-password OLD | --old-password-stdin]
                                       set its password (as the admin, or as
                                       the account with the current one)
  accounts quota ADDR SIZE             change its quota, show what is used
  accounts disable|enable ADDR         refuse (or take again) its mail and logins
  accounts import FILE|-               create the accounts listed in FILE (or
                                       stdin), one a line: ADDR PASSWORD [QUOTA]
                                       or ADDR HASH [QUOTA] (HASH: $argon2id$...
                                       or bcrypt $2...; {HASH} also works);
                                       # comments and blank lines are skipped;
                                       existing accounts are skipped; 4 at a
                                       time, progress on stderr
  domains [list]                       the cluster's local domains
  domains add DOMAIN                   add a local domain on every node
  domains remove DOMAIN                remove it from every node (two steps)
  aliases [list]                       every alias (*@DOMAIN: a catch-all)
  aliases add ALIAS TARGET             deliver ALIAS to an account, or forward it
  aliases remove ALIAS                 remove an alias
  messages ADDR [--folder FOLDER]      list an account's messages (with their
                                       flags; --folder: one folder's)
  folders ADDR                         an account's folders: messages, unseen
  message ADDR ID                      write a stored message's raw bytes to stdout
  queue [--cluster | --node N]         list this node's queue (--cluster: every
                                       member's, with a NODE column; --node:
                                       one member's)
  queue show ID                        one queued message and its recipients
  queue retry|hold|release|delete ID... [--node N]
                                       act on messages (--node: in N's queue;
                                       several: 4 at a time, progress on stderr)
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
  partitions move PARTITION NODE       make a live backend own a partition (a static one whose owner is dead)
  actors                               actor counts per kind on this node
  stats                                counters and delivery latency
  dkim [list]                          the DKIM keys of the local domains
  dkim generate DOMAIN [--selector S] [--algorithm rsa|ed25519]
                                       make (rotate) a domain's signing key
  dkim dns DOMAIN                      the TXT records to publish
  submit --user ADDR --password P --to ADDR[,ADDR] [FILE|-]
                                       submit a message as an account (from FILE,
                                       or stdin; LF or CRLF line ends; password
                                       default $HOMING_PASSWORD)
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
	var he *helpRequest
	switch {
	case err == nil:
		return 0
	case errors.As(err, &he):
		fmt.Fprint(stdout, helpFor(he.topic))
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, helpFor(c.topic))
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "homing ctl: %s\n\n%s", ue.msg, helpFor(c.topic))
		return 2
	case errors.Is(err, errReported):
		return 1
	default:
		fmt.Fprintf(stderr, "homing ctl: %s\n", sanitize(err.Error()))
		return 1
	}
}

// usageError is a command line that does not make sense: exit 2 with
// the help of the command (the overview when there is none).
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

	topic string // the command being run, whose help --help and usage errors show
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
	name, rest := rest[0], rest[1:]
	if name == "help" {
		if len(rest) == 0 {
			return &helpRequest{}
		}
		if _, ok := c.lookup(rest[0]); !ok {
			return c.unknown(rest[0])
		}
		return &helpRequest{topic: canonical(rest[0])}
	}
	cmd, ok := c.lookup(name)
	if !ok {
		return c.unknown(name)
	}
	c.topic = canonical(name)
	return cmd(rest)
}

// helpRequest asks for the help of topic ("" the overview): exit 0.
type helpRequest struct{ topic string }

func (h *helpRequest) Error() string { return "help requested" }

// lookup finds the handler of a command or its alias.
func (c *command) lookup(name string) (func([]string) error, bool) {
	handlers := map[string]func([]string) error{
		"cluster":       c.cmdCluster,
		"nodes":         c.cmdNodes,
		"ready":         c.cmdReady,
		"journey":       c.cmdJourney,
		"accounts":      c.cmdAccounts,
		"messages":      c.cmdMessages,
		"folders":       c.cmdFolders,
		"message":       c.cmdMessage,
		"queue":         c.cmdQueue,
		"settings":      c.cmdSettings,
		"actors":        c.cmdActors,
		"stats":         c.cmdStats,
		"submit":        c.cmdSubmit,
		"rules":         c.cmdRules,
		"account-rules": c.cmdAccountRules,
		"partitions":    c.cmdPartitions,
		"domains":       c.cmdDomains,
		"aliases":       c.cmdAliases,
		"dkim":          c.cmdDKIM,
	}
	h, ok := handlers[canonical(name)]
	return h, ok
}

// aliases are other names of commands.
var aliases = map[string]string{"account": "accounts", "node": "nodes", "health": "ready", "readyz": "ready"}

// canonical is the command's own name for name (an alias, or itself).
func canonical(name string) string {
	if a, ok := aliases[name]; ok {
		return a
	}
	return name
}

// unknown is the usage error for a command that does not exist, with the
// nearest one when it is near enough to be a typo.
func (c *command) unknown(name string) error {
	if s := nearest(name, commandNames()); s != "" {
		return usagef("unknown command %q (did you mean %s?)", name, s)
	}
	return usagef("unknown command %q (homing ctl help lists the commands)", name)
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

// thing is what a request was about, for the line that says why it
// failed: name is a noun phrase ("account demo@example.test", "message 7
// in demo@example.test"), "" for a listing; key the identifier in it that
// a server message naming the thing contains (the id, the address; ""
// means its last word); hint says what to do when it does not exist.
type thing struct {
	name, key, hint string
}

// describe turns a failure into the line for stderr, by the API's status
// and message: the message without the server's internal prefixes
// ("not found: storage: ..."), naming the thing asked about, and what to
// do: 404 is "no <thing>" (or the server's own "no ..." message) with the
// hint; 409 "<thing> exists already"; 401 and 403 say which token to give;
// 429 and 503 when to try again; 500 where to look. Connection failures
// name the address.
func (c *command) describe(t thing, err error) error {
	var ae *admin.Error
	if errors.As(err, &ae) {
		msg := cleanMessage(ae.Message)
		switch ae.Status {
		case http.StatusNotFound:
			// The server's own "no ..." when it names the thing; "no
			// <thing>" when it says "not found" in other words; and when
			// it says something else is missing (a node), that, about
			// the thing.
			about := t.name == "" || strings.Contains(msg, t.keyword())
			switch {
			case strings.HasPrefix(msg, "no ") && !about:
				msg = t.name + ": " + msg
			case strings.HasPrefix(msg, "no "):
			case t.name != "":
				msg, about = "no "+t.name, true
			}
			if about && t.hint != "" {
				msg += " (" + t.hint + ")"
			}
		case http.StatusConflict:
			if t.name != "" {
				msg = t.name + " exists already"
			}
		case http.StatusUnauthorized:
			if t.name == "submit" {
				msg = "submit: " + msg + " (check --user and --password)"
			} else {
				msg = withWhat(t, msg) + " (give the admin token with --token or $HOMING_TOKEN)"
			}
		case http.StatusForbidden:
			msg = withWhat(t, msg)
			if strings.Contains(msg, "read-only") {
				msg += " (give the admin token, not the read-only one)"
			}
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			msg = withWhat(t, msg)
			if ae.RetryAfter > 0 {
				msg += fmt.Sprintf(" (temporary: try again in %s)", ae.RetryAfter)
			} else {
				msg += " (temporary: try again shortly)"
			}
		case http.StatusInternalServerError:
			msg = withWhat(t, msg) + " (the node's log has the detail)"
		default:
			msg = withWhat(t, msg)
		}
		return errors.New(msg)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("admin API at %s: no answer within %s (a longer --timeout?)", c.client.BaseURL, c.timeout)
		}
		return fmt.Errorf("admin API at %s: %v (is the node running? --admin or $HOMING_ADMIN chooses it)", c.client.BaseURL, ue.Err)
	}
	if t.name != "" {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	return err
}

// keyword is the identifier a message about t contains.
func (t thing) keyword() string {
	if t.key != "" {
		return t.key
	}
	return t.name[strings.LastIndexByte(t.name, ' ')+1:]
}

// withWhat prefixes msg with the thing's name unless msg names it
// already (its last word: the id or address).
func withWhat(t thing, msg string) string {
	if t.name == "" {
		return msg
	}
	if strings.Contains(msg, t.keyword()) {
		return msg
	}
	return t.name + ": " + msg
}

// internalPrefixes are words the server puts before a reason for its own
// logs: the error taxonomy's sentinels and package names. An older node,
// or a member's answer relayed by the node asked, may still send them.
var internalPrefixes = []string{"not found: ", "invalid request: ", "already exists: ", "no such user: ",
	"temporarily unavailable: ", "storage: ", "actors: ", "admin: "}

// cleanMessage is a server message without its internal prefixes, also
// after a member's name ("be1: not found: no message X ..." is "no
// message X ...").
func cleanMessage(msg string) string {
	for changed := true; changed; {
		changed = false
		for _, p := range internalPrefixes {
			if i := strings.Index(msg, p); i >= 0 && (i == 0 || isNodePrefix(msg[:i])) {
				msg, changed = msg[i+len(p):], true
			}
		}
	}
	return msg
}

// isNodePrefix reports whether s is "NAME: ", a member's name before its
// relayed answer.
func isNodePrefix(s string) bool {
	name, ok := strings.CutSuffix(s, ": ")
	return ok && name != "" && !strings.ContainsAny(name, " :")
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

// accountThing is an account, for describe.
func accountThing(addr string) thing {
	return thing{name: "account " + addr, key: addr, hint: "homing ctl accounts lists the accounts"}
}

// queueThing is a queued message of node ("": the node asked), for
// describe.
func queueThing(id, node string) thing {
	t := thing{name: "message " + id + " in the queue", key: id, hint: "it may have left the queue: homing ctl journey " + id}
	if node != "" {
		t.name += " of " + node
	}
	return t
}
