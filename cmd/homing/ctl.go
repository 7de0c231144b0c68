package main

// `homing ctl`: the operator's command line over the admin HTTP API
// (package admin). Every identifier here starts with "ctl" so that this
// file shares package main with serve.go without collisions.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
)

const ctlUsage = `usage: homing ctl [--admin ADDR] [--token TOKEN] [--json] COMMAND [ARGS]

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

// runCtl runs `homing ctl` with the arguments after "ctl" and returns the
// exit code: 0 on success, 1 when the operation failed, 2 on a usage
// error. It reads stdin only for --password-stdin, `submit -`, `rules set
// ... -` and `accounts import -`.
func runCtl(args []string, stdout, stderr io.Writer) int {
	return ctlMain(args, os.Stdin, stdout, stderr, os.Getenv)
}

// ctlMain is runCtl with its inputs injectable, for tests.
func ctlMain(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &ctlRun{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now, tty: ctlIsTerminal(stderr)}
	c.admin = getenv("HOMING_ADMIN")
	if c.admin == "" {
		c.admin = "127.0.0.1:8025"
	}
	c.token = getenv("HOMING_TOKEN")
	c.password = getenv("HOMING_PASSWORD")
	c.timeout = time.Minute

	err := c.run(args)
	var ue *ctlUsageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, ctlUsage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "homing ctl: %s\n\n%s", ue.msg, ctlUsage)
		return 2
	case errors.Is(err, errCtlReported):
		return 1
	default:
		fmt.Fprintf(stderr, "homing ctl: %s\n", ctlSanitize(err.Error()))
		return 1
	}
}

// ctlUsageError is a command line that does not make sense: exit 2 with
// the usage text.
type ctlUsageError struct{ msg string }

func (e *ctlUsageError) Error() string { return e.msg }

func ctlUsagef(format string, a ...any) error {
	return &ctlUsageError{msg: fmt.Sprintf(format, a...)}
}

// errCtlReported: the failure was already written to stderr (one line per
// failed item); exit 1 without another line.
var errCtlReported = errors.New("reported")

// ctlRun is one invocation: the global flags and the I/O.
type ctlRun struct {
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
func (c *ctlRun) flags(name string) *flag.FlagSet {
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
func (c *ctlRun) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &ctlUsageError{msg: err.Error()}
		}
		rest := fs.Args()
		consumed := args[:len(args)-len(rest)]
		if n := len(consumed); n > 0 && consumed[n-1] == "--" && !ctlFlagValue(fs, consumed) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// ctlFlagValue reports whether the "--" that ends consumed was the value
// of the flag before it (--password --) rather than the end of flags.
func ctlFlagValue(fs *flag.FlagSet, consumed []string) bool {
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
func (c *ctlRun) run(args []string) error {
	fs := c.flags("homing ctl")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &ctlUsageError{msg: err.Error()}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return ctlUsagef("no command given")
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
		return ctlUsagef("unknown command %q", cmd)
	}
	return h(rest)
}

// connect makes the client and the context once the flags are final.
func (c *ctlRun) connect() (context.CancelFunc, error) {
	if c.admin == "" {
		return nil, ctlUsagef("--admin must not be empty")
	}
	if c.timeout <= 0 {
		return nil, ctlUsagef("--timeout must be positive")
	}
	c.client = admin.NewClient(c.admin, c.token)
	if _, err := url.Parse(c.client.BaseURL); err != nil {
		return nil, ctlUsagef("--admin %q: %v", c.admin, err)
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
func (c *ctlRun) prepare(fs *flag.FlagSet, args []string, min, max int, what string) ([]string, context.CancelFunc, error) {
	pos, err := c.parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return nil, nil, ctlUsagef("%s", what)
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
func (c *ctlRun) describe(what string, err error) error {
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
func (c *ctlRun) out(v any, human func(w io.Writer)) error {
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

func (c *ctlRun) cmdCluster(args []string) error {
	_, done, err := c.prepare(c.flags("cluster"), args, 0, 0, "cluster takes no arguments")
	if err != nil {
		return err
	}
	defer done()
	cl, err := c.client.Cluster(c.ctx)
	if err != nil {
		return c.describe("cluster", err)
	}
	return c.out(cl, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tROLES\tQUEUE MODE\tSTATE\tSMTP\tADMIN\tVERSION\tUPTIME")
		for _, m := range cl.Members {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ctlCell(m.Name), ctlCell(strings.Join(m.Roles, ",")),
				ctlCell(m.QueueMode), ctlCell(m.State), ctlCell(m.SMTP), ctlCell(m.Admin), ctlCell(m.Version), ctlCell(m.Uptime))
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "OWNER\tCOUNT\tPARTITIONS\n")
		for _, o := range ctlOwners(cl.Partitions) {
			fmt.Fprintf(w, "%s\t%d\t%s\n", ctlCell(o.owner), len(o.ids), ctlRanges(o.ids))
		}
	})
}

// ctlOwner is one owner and the partitions it holds.
type ctlOwner struct {
	owner string
	ids   []int
}

// ctlOwners groups partitions by owner, sorted by owner name; partitions
// without an owner are listed as "(none)" last.
func ctlOwners(ps []admin.Partition) []ctlOwner {
	by := map[string][]int{}
	for _, p := range ps {
		by[p.Owner] = append(by[p.Owner], p.ID)
	}
	var out []ctlOwner
	for o, ids := range by {
		sort.Ints(ids)
		out = append(out, ctlOwner{owner: o, ids: ids})
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].owner == "") != (out[j].owner == "") {
			return out[j].owner == ""
		}
		return out[i].owner < out[j].owner
	})
	for i := range out {
		if out[i].owner == "" {
			out[i].owner = "(none)"
		}
	}
	return out
}

// ctlRanges writes ids compactly: 0-3,7,9-12.
func ctlRanges(ids []int) string { return mail.FormatPartitionSet(ids) }

func (c *ctlRun) cmdAccounts(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "add", "create":
			return c.cmdAccountAdd(args[1:])
		case "show", "get":
			return c.cmdAccountShow(args[1:])
		case "delete", "remove", "rm":
			return c.cmdAccountDelete(args[1:])
		case "import":
			return c.cmdAccountImport(args[1:])
		}
		if !strings.HasPrefix(args[0], "-") {
			return ctlUsagef("unknown accounts command %q (add, show, delete, import)", args[0])
		}
	}
	_, done, err := c.prepare(c.flags("accounts"), args, 0, 0, "accounts: unexpected argument")
	if err != nil {
		return err
	}
	defer done()
	as, err := c.client.Accounts(c.ctx)
	if err != nil {
		return c.describe("accounts", err)
	}
	return c.out(as, func(w io.Writer) {
		fmt.Fprintln(w, "ADDRESS\tMESSAGES\tUSED\tQUOTA\tPARTITION\tOWNER\tCREATED")
		for _, a := range as {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", ctlCell(a.Address), a.Messages, ctlSize(a.UsedBytes),
				ctlQuota(a.QuotaBytes), a.Partition, ctlCell(a.Owner), ctlTime(a.Created))
		}
	})
}

func (c *ctlRun) cmdAccountAdd(args []string) error {
	fs := c.flags("accounts add")
	password := fs.String("password", "", "the account's password")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	quota := fs.String("quota", "", "quota, bytes or with a unit (500MiB, 2G)")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return ctlUsagef("accounts add needs exactly one ADDRESS")
	}
	if *password != "" && *fromStdin {
		return ctlUsagef("give only one of --password and --password-stdin")
	}
	req := admin.CreateAccount{Address: pos[0], Password: *password}
	if *quota != "" {
		q, err := ctlParseSize(*quota)
		if err != nil {
			return ctlUsagef("--quota: %v", err)
		}
		req.QuotaBytes = q
	}
	if *fromStdin {
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return fmt.Errorf("reading the password from stdin: %v", err)
		}
		req.Password = strings.TrimRight(line, "\r\n")
		if req.Password == "" {
			return fmt.Errorf("the password read from stdin is empty")
		}
	}
	generated := req.Password == ""
	if generated {
		req.Password = ctlNewPassword()
	}
	done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	a, err := c.client.CreateAccount(c.ctx, req)
	if err != nil {
		return c.describe("account "+req.Address, err)
	}
	if c.json && generated {
		// The API never returns a password; the generated one is added
		// so that scripts can read it.
		return c.out(struct {
			admin.Account
			Password string `json:"password"`
		}{a, req.Password}, nil)
	}
	return c.out(a, func(w io.Writer) {
		fmt.Fprintf(w, "created account %s (partition %d", ctlCell(a.Address), a.Partition)
		if a.Owner != "" {
			fmt.Fprintf(w, ", owner %s", ctlCell(a.Owner))
		}
		fmt.Fprintln(w, ")")
		if generated {
			fmt.Fprintf(w, "password: %s\n", req.Password)
		}
	})
}

// ctlNewPassword returns 128 random bits as 22 URL-safe characters.
func ctlNewPassword() string {
	b := make([]byte, 16)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *ctlRun) cmdAccountShow(args []string) error {
	pos, done, err := c.prepare(c.flags("accounts show"), args, 1, 1, "accounts show needs exactly one ADDRESS")
	if err != nil {
		return err
	}
	defer done()
	a, err := c.client.Account(c.ctx, pos[0])
	if err != nil {
		return c.describe("account "+pos[0], err)
	}
	return c.out(a, func(w io.Writer) {
		fmt.Fprintf(w, "address:\t%s\n", ctlCell(a.Address))
		fmt.Fprintf(w, "messages:\t%d\n", a.Messages)
		fmt.Fprintf(w, "used:\t%s\n", ctlSize(a.UsedBytes))
		fmt.Fprintf(w, "quota:\t%s\n", ctlQuota(a.QuotaBytes))
		fmt.Fprintf(w, "partition:\t%d\n", a.Partition)
		fmt.Fprintf(w, "owner:\t%s\n", ctlCell(a.Owner))
		fmt.Fprintf(w, "created:\t%s\n", ctlTime(a.Created))
	})
}

func (c *ctlRun) cmdAccountDelete(args []string) error {
	pos, done, err := c.prepare(c.flags("accounts delete"), args, 1, 1, "accounts delete needs exactly one ADDRESS")
	if err != nil {
		return err
	}
	defer done()
	if err := c.client.DeleteAccount(c.ctx, pos[0]); err != nil {
		return c.describe("account "+pos[0], err)
	}
	if !c.json {
		fmt.Fprintf(c.stdout, "deleted account %s\n", ctlCell(pos[0]))
	}
	return nil
}

func (c *ctlRun) cmdMessages(args []string) error {
	pos, done, err := c.prepare(c.flags("messages"), args, 1, 1, "messages needs exactly one ADDRESS")
	if err != nil {
		return err
	}
	defer done()
	ms, err := c.client.Messages(c.ctx, pos[0])
	if err != nil {
		return c.describe("account "+pos[0], err)
	}
	return c.out(ms, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tFOLDER\tSIZE\tRECEIVED\tFROM\tSUBJECT")
		for _, m := range ms {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", ctlCell(m.ID), ctlCell(m.Folder), ctlSize(m.Size),
				ctlTime(m.Received), ctlClip(m.From, 40), ctlClip(m.Subject, 60))
		}
	})
}

func (c *ctlRun) cmdMessage(args []string) error {
	pos, done, err := c.prepare(c.flags("message"), args, 2, 2, "message needs ADDRESS and ID")
	if err != nil {
		return err
	}
	defer done()
	raw, err := c.client.RawMessage(c.ctx, pos[0], pos[1])
	if err != nil {
		return c.describe("message "+pos[1], err)
	}
	_, err = c.stdout.Write(raw)
	return err
}

func (c *ctlRun) cmdQueue(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "show":
			return c.cmdQueueShow(args[1:])
		case admin.ActionRetry, admin.ActionHold, admin.ActionRelease, admin.ActionDelete:
			return c.cmdQueueAction(args[0], args[1:])
		}
		if !strings.HasPrefix(args[0], "-") {
			return ctlUsagef("unknown queue command %q (show, retry, hold, release, delete)", args[0])
		}
	}
	fs := c.flags("queue")
	all := fs.Bool("cluster", false, "every member's queue")
	node := fs.String("node", "", "one member's queue")
	_, done, err := c.prepare(fs, args, 0, 0, "queue: unexpected argument")
	if err != nil {
		return err
	}
	defer done()
	if *all && *node != "" {
		return ctlUsagef("give only one of --cluster and --node")
	}
	q, err := c.queueOf(*all, *node)
	if err != nil {
		return err
	}
	withNode := *all || *node != ""
	return c.out(q, func(w io.Writer) {
		if withNode {
			fmt.Fprint(w, "NODE\t")
		}
		fmt.Fprintln(w, "ID\tSTATE\tATTEMPTS\tNEXT ATTEMPT\tSIZE\tSENDER\tRECIPIENTS\tLAST ERROR")
		for _, e := range q {
			if withNode {
				fmt.Fprintf(w, "%s\t", ctlCell(e.Node))
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", ctlCell(e.ID), ctlCell(e.State), e.Attempts,
				ctlTimePtr(e.NextAttempt), ctlSize(e.Size), ctlSender(e.Sender), ctlRecipients(e.Recipients), ctlClip(e.LastError, 60))
		}
	})
}

// queueOf lists this node's queue, every member's (cluster), or one
// member's (node: the cluster-wide listing cut to that node). Entries of
// the cluster-wide listing name their node.
func (c *ctlRun) queueOf(cluster bool, node string) ([]admin.QueueEntry, error) {
	if !cluster && node == "" {
		q, err := c.client.Queue(c.ctx)
		if err != nil {
			return nil, c.describe("queue", err)
		}
		return q, nil
	}
	all, err := c.client.ClusterQueue(c.ctx)
	if err != nil {
		return nil, c.describe("cluster queue", err)
	}
	if node == "" {
		return all, nil
	}
	q := []admin.QueueEntry{}
	for _, e := range all {
		if e.Node == node {
			q = append(q, e)
		}
	}
	return q, nil
}

// ctlRecipients is the first recipient and how many more there are.
func ctlRecipients(rs []admin.QueueRecipient) string {
	switch len(rs) {
	case 0:
		return "-"
	case 1:
		return ctlCell(rs[0].Address)
	}
	return fmt.Sprintf("%s (+%d)", ctlCell(rs[0].Address), len(rs)-1)
}

func (c *ctlRun) cmdQueueShow(args []string) error {
	pos, done, err := c.prepare(c.flags("queue show"), args, 1, 1, "queue show needs exactly one ID")
	if err != nil {
		return err
	}
	defer done()
	e, err := c.client.QueueEntry(c.ctx, pos[0])
	if err != nil {
		return c.describe("queue "+pos[0], err)
	}
	return c.out(e, func(w io.Writer) {
		fmt.Fprintf(w, "id:\t%s\n", ctlCell(e.ID))
		fmt.Fprintf(w, "sender:\t%s\n", ctlSender(e.Sender))
		fmt.Fprintf(w, "state:\t%s\n", ctlCell(e.State))
		fmt.Fprintf(w, "size:\t%s\n", ctlSize(e.Size))
		fmt.Fprintf(w, "received:\t%s\n", ctlTime(e.Received))
		fmt.Fprintf(w, "attempts:\t%d\n", e.Attempts)
		fmt.Fprintf(w, "next attempt:\t%s\n", ctlTimePtr(e.NextAttempt))
		fmt.Fprintf(w, "last error:\t%s\n", ctlCell(e.LastError))
		fmt.Fprintln(w)
		fmt.Fprintln(w, "RECIPIENT\tSTATE\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
		for _, r := range e.Recipients {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", ctlCell(r.Address), ctlCell(r.State), r.Attempts,
				ctlTimePtr(r.NextAttempt), ctlClip(r.LastError, 80))
		}
	})
}

// ctlDone is the outcome of each queue action, for the report line.
func ctlDone(action string) string {
	switch action {
	case admin.ActionRetry:
		return "retry scheduled"
	case admin.ActionHold:
		return "held"
	case admin.ActionRelease:
		return "released"
	}
	return "deleted"
}

func (c *ctlRun) cmdQueueAction(action string, args []string) error {
	fs := c.flags("queue " + action)
	node := fs.String("node", "", "act on this member's queue")
	var all, cluster *bool
	if action == admin.ActionRetry {
		all = fs.Bool("all", false, "every deferred message")
		cluster = fs.Bool("cluster", false, "with --all: of every member")
	}
	ids, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if all != nil && *all {
		switch {
		case len(ids) > 0:
			return ctlUsagef("queue retry --all takes no ID")
		case *cluster && *node != "":
			return ctlUsagef("give only one of --cluster and --node")
		}
		return c.retryAll(*cluster, *node)
	}
	switch {
	case cluster != nil && *cluster:
		return ctlUsagef("--cluster goes with --all (for single messages give --node N)")
	case len(ids) == 0:
		return ctlUsagef("queue %s needs at least one ID", action)
	}
	done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	failed := 0
	for _, id := range ids {
		var err error
		if *node != "" {
			err = c.client.NodeQueueAction(c.ctx, *node, id, action)
		} else {
			err = c.client.QueueAction(c.ctx, id, action)
		}
		if err != nil {
			failed++
			fmt.Fprintf(c.stderr, "homing ctl: %s\n", ctlSanitize(c.describe("queue "+id, err).Error()))
			continue
		}
		if !c.json {
			fmt.Fprintf(c.stdout, "%s: %s\n", ctlCell(id), ctlDone(action))
		}
	}
	if failed > 0 {
		return errCtlReported
	}
	return nil
}

func (c *ctlRun) cmdSettings(args []string) error {
	if len(args) > 0 && args[0] == "set" {
		return c.cmdSettingsSet(args[1:])
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return ctlUsagef("unknown settings command %q (set)", args[0])
	}
	_, done, err := c.prepare(c.flags("settings"), args, 0, 0, "settings: unexpected argument")
	if err != nil {
		return err
	}
	defer done()
	s, err := c.client.Settings(c.ctx)
	if err != nil {
		return c.describe("settings", err)
	}
	return c.printSettings(s)
}

func (c *ctlRun) printSettings(s admin.Settings) error {
	return c.out(s, func(w io.Writer) {
		fmt.Fprintf(w, "name:\t%s\n", ctlCell(s.Name))
		fmt.Fprintf(w, "roles:\t%s\n", ctlCell(strings.Join(s.Roles, ",")))
		fmt.Fprintf(w, "queue mode:\t%s\n", ctlCell(s.QueueMode))
	})
}

func (c *ctlRun) cmdSettingsSet(args []string) error {
	fs := c.flags("settings set")
	node := fs.String("node", "", "change this member's settings")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return ctlUsagef("settings set needs a KEY and a VALUE (queue-mode MODE)")
	}
	var up admin.SettingsUpdate
	switch pos[0] {
	case "queue-mode", "queueMode":
		if !admin.ValidQueueMode(pos[1]) {
			return ctlUsagef("queue mode %q: must be locally, locally-for-others or remotely", pos[1])
		}
		up.QueueMode = &pos[1]
	default:
		return ctlUsagef("unknown setting %q (queue-mode)", pos[0])
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
		return c.describe(what, err)
	}
	return c.printSettings(s)
}

func (c *ctlRun) cmdActors(args []string) error {
	_, done, err := c.prepare(c.flags("actors"), args, 0, 0, "actors takes no arguments")
	if err != nil {
		return err
	}
	defer done()
	a, err := c.client.Actors(c.ctx)
	if err != nil {
		return c.describe("actors", err)
	}
	return c.out(a, func(w io.Writer) {
		kinds := make([]string, 0, len(a))
		total := 0
		for k, n := range a {
			kinds = append(kinds, k)
			total += n
		}
		sort.Strings(kinds)
		fmt.Fprintln(w, "KIND\tCOUNT")
		for _, k := range kinds {
			fmt.Fprintf(w, "%s\t%d\n", ctlCell(k), a[k])
		}
		fmt.Fprintf(w, "total\t%d\n", total)
	})
}

func (c *ctlRun) cmdStats(args []string) error {
	_, done, err := c.prepare(c.flags("stats"), args, 0, 0, "stats takes no arguments")
	if err != nil {
		return err
	}
	defer done()
	s, err := c.client.Stats(c.ctx)
	if err != nil {
		return c.describe("stats", err)
	}
	return c.out(s, func(w io.Writer) {
		fmt.Fprintf(w, "accepted:\t%d\n", s.Accepted)
		fmt.Fprintf(w, "delivered local:\t%d\n", s.DeliveredLocal)
		fmt.Fprintf(w, "relayed:\t%d\n", s.Relayed)
		fmt.Fprintf(w, "bounced:\t%d\n", s.Bounced)
		fmt.Fprintf(w, "deferred:\t%d\n", s.Deferred)
		fmt.Fprintf(w, "queue depth:\t%d\n", s.QueueDepth)
		fmt.Fprintf(w, "store latency p50:\t%s\n", ctlMillis(s.StoreLatencyP50))
		fmt.Fprintf(w, "store latency p99:\t%s\n", ctlMillis(s.StoreLatencyP99))
		fmt.Fprintf(w, "since:\t%s\n", ctlTime(s.Since))
	})
}

func (c *ctlRun) cmdSubmit(args []string) error {
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
		return ctlUsagef("submit needs --user")
	case *password == "":
		return ctlUsagef("submit needs --password (or $HOMING_PASSWORD)")
	case len(to) == 0:
		return ctlUsagef("submit needs --to")
	case len(pos) > 1:
		return ctlUsagef("submit takes at most one FILE")
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
		fmt.Fprintf(w, "queued %s\n", ctlCell(id))
	})
}

// ctlTime is t in local time, RFC 3339; "-" for the zero time.
func ctlTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

func ctlTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return ctlTime(*t)
}

// ctlSize is n bytes for people: 512 B, 4.0 KiB, 1.5 MiB.
func ctlSize(n int64) string {
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 && v > -1024 || unit == "TiB" {
			return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
		}
	}
	return "" // not reached
}

// ctlQuota is a quota for people; 0 means none set.
func ctlQuota(n int64) string {
	if n <= 0 {
		return "-"
	}
	return ctlSize(n)
}

// ctlParseSize parses "1048576", "500MiB", "500M", "2G", "64k" (binary
// units, K = 1024).
func ctlParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with K, M, G, T)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %v", s, err)
	}
	unit := strings.ToUpper(strings.TrimSpace(t[i:]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
	sh, ok := shift[unit]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit (K, M, G, T)", s)
	}
	if n > (1<<63-1)>>sh {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << sh, nil
}

// ctlMillis shows seconds as milliseconds.
func ctlMillis(sec float64) string {
	return strconv.FormatFloat(sec*1000, 'f', 1, 64) + " ms"
}

// ctlSender shows the null reverse-path as <>.
func ctlSender(s string) string {
	if s == "" {
		return "<>"
	}
	return ctlCell(s)
}

// ctlCell makes a server-supplied string safe for a table cell: control
// characters (a terminal escape in a Subject, a tab that would break the
// columns) become '?', and "" becomes "-".
func ctlCell(s string) string {
	if s == "" {
		return "-"
	}
	return ctlSanitize(s)
}

func ctlSanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}

// ctlClip is ctlCell cut to at most n runes, with "…" when cut.
func ctlClip(s string, n int) string {
	s = ctlCell(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
