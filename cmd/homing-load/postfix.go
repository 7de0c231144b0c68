package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// privatePostfix is a Postfix instance the benchmark owns: its own
// config_directory, queue_directory, data_directory and Maildirs in a
// temporary directory, its master started with `postfix -c DIR start`
// (not the system's service), smtpd on one loopback port, and every
// account of the run a virtual mailbox (virtual(8), Maildir) of the bench
// domain. Nothing of Postfix's durability is turned off: the queue file
// is fsynced before smtpd's 250 and the Maildir file before the queue
// file is removed, as on a real server.
type privatePostfix struct {
	Dir  string // everything: etc/, queue/, data/, mail/, maillog
	SMTP string // 127.0.0.1:port of its smtpd

	postfix string // the postfix(1) command
	conf    string // config_directory
	counter *maildirCounter
}

// postfixOptions are what a private instance is made of.
type postfixOptions struct {
	Postfix  string   // postfix(1); "" = on PATH or /usr/sbin/postfix
	Domain   string   // virtual_mailbox_domains
	Accounts []string // addresses local@Domain, one Maildir each
	Sessions int      // concurrent SMTP sessions the load opens
	// User owns the Maildirs (virtual_uid_maps, virtual_gid_maps);
	// "" = nobody.
	User string
}

// postfixCommand finds postfix(1).
func postfixCommand(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if p, err := exec.LookPath("postfix"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/postfix"); err == nil {
		return "/usr/sbin/postfix", nil
	}
	return "", errors.New("postfix(1) is not on PATH nor in /usr/sbin (Debian: apt-get install postfix)")
}

// postfixMainCF is main.cf of the instance in dir: loopback only, no
// local delivery, the bench domain's accounts as virtual mailboxes, the
// log in dir/maillog. Only limits are set that a run of sessions
// concurrent sessions would otherwise hit.
func postfixMainCF(dir, domain string, uid, gid, sessions int) string {
	return fmt.Sprintf(`# A private Postfix instance of homing-load (not the system's).
compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = postfix-bench.localhost
mydestination =
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
virtual_mailbox_domains = %[2]s
virtual_mailbox_base = %[1]s/mail
virtual_mailbox_maps = texthash:%[1]s/etc/vmailbox
virtual_uid_maps = static:%[3]d
virtual_gid_maps = static:%[4]d
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
default_process_limit = %[5]d
smtpd_client_connection_count_limit = %[6]d
`, dir, domain, uid, gid, max(100, 2*sessions+10), max(50, sessions+10))
}

// postfixMasterCF is master.cf: smtpd on smtpAddr instead of port 25, and
// Postfix's standard services, none chrooted (the instance's queue is
// not set up for chroot).
func postfixMasterCF(smtpAddr string) string {
	return smtpAddr + ` inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`
}

// vmailboxMap is the texthash virtual_mailbox_maps: every account to
// DOMAIN/LOCAL/ (the trailing slash makes it a Maildir).
func vmailboxMap(accounts []string) (string, []string, error) {
	var b strings.Builder
	var dirs []string
	for _, a := range accounts {
		local, domain, ok := strings.Cut(a, "@")
		if !ok || local == "" || strings.ContainsAny(a, "/ \t\r\n") {
			return "", nil, fmt.Errorf("account %q is not local@domain", a)
		}
		rel := domain + "/" + local + "/"
		fmt.Fprintf(&b, "%s %s\n", a, rel)
		dirs = append(dirs, rel)
	}
	return b.String(), dirs, nil
}

// startPostfix makes and starts a private instance and waits until its
// master runs (`postfix start` returns when it does). On failure nothing
// is left running and the directory is removed.
func startPostfix(ctx context.Context, o postfixOptions) (_ *privatePostfix, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the private Postfix needs root: its master starts as root and runs its daemons as the postfix user")
	}
	cmd, err := postfixCommand(o.Postfix)
	if err != nil {
		return nil, err
	}
	name := o.User
	if name == "" {
		name = "nobody"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("the Maildirs' owner: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if _, err := user.Lookup("postfix"); err != nil {
		return nil, fmt.Errorf("Postfix's mail_owner: %w (the postfix package creates it)", err)
	}
	if err := searchableByAll(os.TempDir()); err != nil {
		return nil, fmt.Errorf("the private Postfix's directory: %w (Postfix's daemons run as postfix, its deliveries as %s; set TMPDIR)", err, name)
	}
	dir, err := os.MkdirTemp("", "homing-load-postfix-")
	if err != nil {
		return nil, err
	}
	p := &privatePostfix{Dir: dir, postfix: cmd, conf: filepath.Join(dir, "etc")}
	defer func() {
		if err != nil {
			// A master that came up although start failed is
			// not left behind.
			if pid := p.masterPID(); pid > 0 && alive(pid) {
				syscall.Kill(pid, syscall.SIGTERM)
			}
			p.remove()
		}
	}()
	// The daemons run as postfix and the deliveries as uid: they
	// must get through the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	for _, d := range []string{"etc", "queue", "data", "mail"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	pf, err := user.Lookup("postfix")
	if err == nil {
		puid, _ := strconv.Atoi(pf.Uid)
		err = os.Chown(filepath.Join(dir, "data"), puid, -1)
	}
	if err != nil {
		return nil, fmt.Errorf("data_directory: %w", err)
	}
	vmap, rels, err := vmailboxMap(o.Accounts)
	if err != nil {
		return nil, err
	}
	var news []string
	for _, rel := range rels {
		// virtual(8) creates missing Maildirs only where the owner
		// may write; made here, they can also be watched from the
		// start.
		acct := filepath.Join(dir, "mail", rel)
		for _, d := range []string{filepath.Dir(filepath.Clean(acct)), acct, filepath.Join(acct, "tmp"), filepath.Join(acct, "new"), filepath.Join(acct, "cur")} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, err
			}
			if err := os.Chown(d, uid, gid); err != nil {
				return nil, err
			}
		}
		news = append(news, filepath.Join(acct, "new"))
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	p.SMTP = fmt.Sprintf("127.0.0.1:%d", ports[0])
	files := map[string]string{
		"main.cf":   postfixMainCF(dir, o.Domain, uid, gid, o.Sessions),
		"master.cf": postfixMasterCF(p.SMTP),
		"vmailbox":  vmap,
	}
	// Postfix reads a file only once its modification time is in the
	// past (dict_load_file waits for a writer to finish, 300 ms at a
	// time): dated a minute back, the files are read at once.
	past := time.Now().Add(-time.Minute)
	for name, text := range files {
		path := filepath.Join(p.conf, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
		if err := os.Chtimes(path, past, past); err != nil {
			return nil, err
		}
	}
	if p.counter, err = newMaildirCounter(news); err != nil {
		return nil, err
	}
	// start runs postfix check's checks (which create the queue's
	// directories with their owners and modes), then master in the
	// background, and returns when master is up (master -w).
	if err := p.run(ctx, "start"); err != nil {
		return nil, err
	}
	return p, nil
}

// searchableByAll checks that every user may reach into dir: it and
// every directory above it have the execute bit for others.
func searchableByAll(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := abs; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s (mode %v) is not searchable by other users", d, st.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// run runs `postfix -c CONF verb`. Postfix writes its errors to a
// terminal or the log, so the error includes the log's tail.
func (p *privatePostfix) run(ctx context.Context, verb string) error {
	var out bytes.Buffer
	c := exec.CommandContext(ctx, p.postfix, "-c", p.conf, verb)
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		return fmt.Errorf("postfix -c %s %s: %v %s; its log:\n%s", p.conf, verb, err, strings.TrimSpace(out.String()), p.logTail(15))
	}
	return nil
}

// Delivered counts the messages in the Maildirs.
func (p *privatePostfix) Delivered() (int64, error) { return p.counter.Count() }

// waitDelivered waits until the Maildirs hold want messages.
func (p *privatePostfix) waitDelivered(ctx context.Context, want int64, timeout time.Duration) maildirWait {
	return p.counter.wait(ctx, want, timeout)
}

// Stop stops the instance (`postfix stop`), waits for its master to
// exit, and removes its directory. Deliveries still in the queue are
// lost with it.
func (p *privatePostfix) Stop(timeout time.Duration) error {
	defer p.remove()
	pid := p.masterPID()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := p.run(ctx, "stop")
	if pid <= 0 {
		return err
	}
	for alive(pid) {
		select {
		case <-ctx.Done():
			syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("the private Postfix's master (pid %d) did not exit within %s of postfix stop and was killed", pid, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return err
}

// masterPID reads queue/pid/master.pid; 0 if there is none.
func (p *privatePostfix) masterPID() int {
	b, err := os.ReadFile(filepath.Join(p.Dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// alive reports whether pid is a process that has not exited (a zombie
// has).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may contain spaces and parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func (p *privatePostfix) remove() {
	if p.counter != nil {
		p.counter.Close()
		p.counter = nil
	}
	os.RemoveAll(p.Dir)
}

// logTail is the end of the instance's maillog.
func (p *privatePostfix) logTail(lines int) string {
	b, err := os.ReadFile(filepath.Join(p.Dir, "maillog"))
	if err != nil {
		return "(no maillog: " + err.Error() + ")"
	}
	parts := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
