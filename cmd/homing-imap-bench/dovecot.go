package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const dovecotUser, dovecotPass = "bench", "bench-password-1"

// dovecotMailUID is the user Dovecot's mail processes run as (it refuses
// root): nobody, which owns the Maildir.
const dovecotMailUID = 65534

// dovecotServer is a Dovecot started by the benchmark in the foreground
// (dovecot -F) with a configuration of its own in a temporary directory:
// IMAP only, on 127.0.0.1 and a free port, no imaps, no SSL, plain
// passwords from a passwd-file, the account's Maildir in the directory.
// It is not the system's service and leaves nothing behind.
type dovecotServer struct {
	dir     string
	addr    string
	cmd     *exec.Cmd
	exited  chan struct{}
	written time.Duration // writing the Maildir
}

const dovecotConf = `# homing-imap-bench's Dovecot: loopback only, IMAP only, no SSL.
protocols = imap
listen = 127.0.0.1
base_dir = {{dir}}/run
state_dir = {{dir}}/state
log_path = {{dir}}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {{dir}}/passwd
}
userdb {
  driver = static
  args = uid={{uid}} gid={{uid}} home={{dir}}/home/%u
}
protocol imap {
  mail_max_userip_connections = 1000
}
service imap {
  process_limit = 1000
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = {{port}}
  }
  inet_listener imaps {
    port = 0
  }
}
`

func startDovecot(cfg config, msgs []message, logf func(string, ...any)) (*dovecotServer, error) {
	// A short path: Dovecot's unix sockets live under base_dir.
	dir, err := os.MkdirTemp("/tmp", "hib-dovecot-")
	if err != nil {
		return nil, err
	}
	d := &dovecotServer{dir: dir, exited: make(chan struct{})}
	fail := func(err error) (*dovecotServer, error) {
		if d.cmd == nil && !cfg.Keep {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	start := time.Now()
	maildir := filepath.Join(dir, "home", dovecotUser, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, sub), 0o700); err != nil {
			return fail(err)
		}
	}
	for i, m := range msgs {
		lf := bytes.ReplaceAll(m.Raw, []byte("\r\n"), []byte("\n"))
		p := filepath.Join(maildir, "cur", maildirName(i, m, len(lf)))
		if err := os.WriteFile(p, lf, 0o600); err != nil {
			return fail(err)
		}
		if err := os.Chtimes(p, m.Date, m.Date); err != nil { // the internal date
			return fail(err)
		}
	}
	if err := chownTree(filepath.Join(dir, "home"), dovecotMailUID); err != nil {
		return fail(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	d.written = time.Since(start)
	logf("Dovecot: wrote %d files into %s in %v", len(msgs), maildir, d.written.Round(time.Millisecond))

	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{uid}}", strconv.Itoa(dovecotMailUID), "{{port}}", strconv.Itoa(port)).Replace(dovecotConf)
	for _, f := range []struct{ name, data string }{
		{"dovecot.conf", conf},
		{"passwd", dovecotUser + ":{PLAIN}" + dovecotPass + "\n"},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.data), 0o644); err != nil {
			return fail(err)
		}
	}
	for _, sub := range []string{"run", "state"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return fail(err)
		}
	}
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		return fail(err)
	}
	d.cmd = exec.Command(cfg.Dovecot, "-F", "-c", filepath.Join(dir, "dovecot.conf"))
	d.cmd.Stdout, d.cmd.Stderr = out, out
	if err := d.cmd.Start(); err != nil {
		out.Close()
		return fail(err)
	}
	go func() { _ = d.cmd.Wait(); out.Close(); close(d.exited) }()
	d.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", d.addr); err == nil {
			c.Close()
			break
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("dovecot exited during start-up:\n%s", d.logTail())
		case <-time.After(20 * time.Millisecond): // polling its port
		}
		if time.Now().After(deadline) {
			d.stop(cfg.Keep)
			return nil, fmt.Errorf("dovecot did not listen within 30 s:\n%s", d.logTail())
		}
	}
	v, _ := exec.Command(cfg.Dovecot, "--version").Output()
	logf("Dovecot %s: IMAP %s, configuration and Maildir in %s", strings.TrimSpace(string(v)), d.addr, dir)
	return d, nil
}

func (d *dovecotServer) logTail() string {
	var b []byte
	for _, f := range []string{"stdout", "dovecot.log"} {
		x, _ := os.ReadFile(filepath.Join(d.dir, f))
		b = append(b, x...)
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (d *dovecotServer) stop(keep bool) {
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
	}
	if !keep {
		os.RemoveAll(d.dir)
	}
}

func chownTree(root string, uid int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
}

// freePort is a port free on 127.0.0.1 now (Dovecot cannot report the
// port it got).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
