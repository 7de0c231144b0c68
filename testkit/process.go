package testkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/homing-mail/homing/testkit/dnstest"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildHoming builds cmd/homing into dir and returns the binary's path.
// Call it once from TestMain and share the path.
func BuildHoming(dir string) (string, error) {
	return BuildCommand(dir, "github.com/homing-mail/homing/cmd/homing")
}

// BuildCommand builds the main package pkg (an import path) into dir and
// returns the binary's path.
func BuildCommand(dir, pkg string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %v: %s", pkg, err, stderr.String())
	}
	return out, nil
}

// Process is a `homing serve` child process. Its listeners bind loopback
// port 0 and the process reports the addresses it got (--ready-file), so
// there is no race for a free port; SMTP, Admin and Gossip are those of the
// latest start.
type Process struct {
	Name string
	Bin  string
	// Args are the flags after "serve", without the ones Start adds
	// (--name, --data, --ready-file, and --smtp/--admin/--pop3 on port 0 unless
	// Args sets them). A Cluster changes them before a restart.
	Args []string
	Data string
	// Prefix, if set, is the command line that runs Bin: Bin and its
	// arguments follow it (ip netns exec NS, a host of package netns).
	Prefix []string

	SMTP, Admin, Gossip string
	Submission          string // "" unless Args turn the listener on
	// IMAP is the IMAP listener (STARTTLS; port 0 unless Args set it),
	// POP3 the POP3 one (STLS; the same).
	IMAP, POP3 string

	t      testing.TB
	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *os.File
	waitCh chan error
}

// startTimeout bounds the wait for a process to report that it runs.
const startTimeout = 30 * time.Second

// StartProcess runs `bin serve` with a fresh data directory and loopback
// listeners on port 0, plus args, and waits until it reports its
// addresses. The process is killed when the test ends.
func StartProcess(t testing.TB, bin, name string, args ...string) *Process {
	t.Helper()
	return StartProcessIn(t, bin, name, t.TempDir(), args...)
}

// StartProcessIn is StartProcess on the data directory data (a
// filesystem the test mounted for it, say). The ready file and the log go
// to data's parent directory, as StartProcess's do.
func StartProcessIn(t testing.TB, bin, name, data string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, Bin: bin, t: t, Args: args, Data: data}
	p.Start()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Start starts the process (again, after Kill or Stop) with its Args and
// data, and waits until it has written its ready file.
func (p *Process) Start() {
	p.t.Helper()
	ready := filepath.Join(p.Data, "..", p.Name+".ready")
	if err := os.Remove(ready); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.t.Fatal(err)
	}
	args := []string{"serve", "--name", p.Name, "--data", p.Data, "--ready-file", ready}
	if !hasFlag(p.Args, "--smtp") {
		args = append(args, "--smtp", "127.0.0.1:0")
	}
	if !hasFlag(p.Args, "--admin") {
		args = append(args, "--admin", "127.0.0.1:0")
	}
	if !hasFlag(p.Args, "--imap") {
		args = append(args, "--imap", "127.0.0.1:0")
	}
	if !hasFlag(p.Args, "--pop3") {
		args = append(args, "--pop3", "127.0.0.1:0")
	}
	if !hasFlag(p.Args, "--dns") {
		// Never the system's resolver: an empty zone of its own.
		args = append(args, "--dns", dnstest.Start(p.t, nil).Addr())
	}
	p.mu.Lock()
	logf, err := os.OpenFile(filepath.Join(p.Data, "..", p.Name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.mu.Unlock()
		p.t.Fatal(err)
	}
	line := append(append(append(append([]string(nil), p.Prefix...), p.Bin), args...), p.Args...)
	cmd := exec.Command(line[0], line[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatal(err)
	}
	p.cmd, p.log = cmd, logf
	p.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var r struct{ SMTP, Admin, Gossip, Submission, IMAP, POP3 string }
	deadline := time.Now().Add(startTimeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		select {
		case err := <-exited:
			p.t.Fatalf("%s exited during start-up: %v\n%s", p.Name, err, p.Log())
		default:
		}
		if b, err := os.ReadFile(ready); err == nil && json.Unmarshal(b, &r) == nil {
			break
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not report that it runs within %v\n%s", p.Name, startTimeout, p.Log())
		}
		timer := time.NewTimer(wait) // polling interval: the file decides
		<-timer.C
	}
	p.mu.Lock()
	p.SMTP, p.Admin, p.Gossip, p.Submission, p.IMAP, p.POP3 = r.SMTP, r.Admin, r.Gossip, r.Submission, r.IMAP, r.POP3
	p.waitCh = exited // Kill and Stop reap through it
	p.mu.Unlock()
}

// hasFlag reports whether args set the flag (as "--f v" or "--f=v").
func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || len(a) > len(flag) && a[:len(flag)+1] == flag+"=" {
			return true
		}
	}
	return false
}

// Running reports whether the process has been started and not stopped.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// PID is the running process's id (0 when it is not running).
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Signal sends sig to the running process without waiting (SIGSTOP and
// SIGCONT freeze and thaw it).
func (p *Process) Signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() { p.signal(syscall.SIGKILL) }

// Stop sends SIGTERM and waits for a clean exit (SIGKILL after 30 s).
func (p *Process) Stop() { p.signal(syscall.SIGTERM) }

func (p *Process) signal(sig syscall.Signal) { p.end(sig, 30*time.Second) }

// Terminate sends SIGTERM and waits up to timeout for the process to exit
// by itself; it returns how it exited and true, or, when it did not exit
// in time, kills it and returns false.
func (p *Process) Terminate(timeout time.Duration) (*os.ProcessState, bool) {
	return p.end(syscall.SIGTERM, timeout)
}

// end sends sig (after SIGCONT: a frozen process cannot exit) and waits
// up to timeout for the process to exit, killing it after that; it
// returns how it exited and whether it did so by itself.
func (p *Process) end(sig syscall.Signal, timeout time.Duration) (*os.ProcessState, bool) {
	p.mu.Lock()
	cmd, ch := p.cmd, p.waitCh
	p.cmd, p.waitCh = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return nil, false
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(sig)
	if ch == nil {
		return nil, false
	}
	defer func() {
		if p.log != nil {
			p.log.Close()
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ch:
		return cmd.ProcessState, true
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-ch
		return cmd.ProcessState, false
	}
}

// Log returns what the process wrote so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Data, "..", p.Name+".log"))
	return string(b)
}
