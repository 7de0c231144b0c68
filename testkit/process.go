package testkit

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
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
	out := filepath.Join(dir, "homing")
	cmd := exec.Command("go", "build", "-o", out, "github.com/homing-mail/homing/cmd/homing")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, stderr.String())
	}
	return out, nil
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

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Process is a `homing serve` child process.
type Process struct {
	Name  string
	Bin   string
	Args  []string // after "serve"
	SMTP  string
	Admin string
	Data  string

	t      testing.TB
	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *os.File
	waitCh chan error
}

// StartProcess runs `bin serve` with a fresh data directory and loopback
// listeners plus args, and waits until its admin API answers. The process
// is killed when the test ends.
func StartProcess(t testing.TB, bin, name string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, Bin: bin, t: t, SMTP: FreeAddr(t), Admin: FreeAddr(t), Data: t.TempDir()}
	p.Args = append([]string{"--name", name, "--smtp", p.SMTP, "--admin", p.Admin, "--data", p.Data}, args...)
	p.Start()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Start starts the process (again, after Kill or Stop) with the same
// arguments and data, and waits until it answers.
func (p *Process) Start() {
	p.t.Helper()
	p.mu.Lock()
	logf, err := os.OpenFile(filepath.Join(p.Data, "..", p.Name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.mu.Unlock()
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.Bin, append([]string{"serve"}, p.Args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatal(err)
	}
	p.cmd, p.log = cmd, logf
	p.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			p.t.Fatalf("%s exited during start-up: %v\n%s", p.Name, err, p.Log())
		default:
		}
		resp, err := http.Get("http://" + p.Admin + "/api/v1/settings")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not answer on %s within 30s\n%s", p.Name, p.Admin, p.Log())
		}
		timer := time.NewTimer(20 * time.Millisecond)
		<-timer.C
	}
	// Hand the reaper to p.cmd's owner: Kill and Stop wait on exited.
	p.mu.Lock()
	p.waitCh = exited
	p.mu.Unlock()
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

func (p *Process) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, ch := p.cmd, p.waitCh
	p.cmd, p.waitCh = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-ch
	}
	if p.log != nil {
		p.log.Close()
	}
}

// Log returns what the process wrote so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Data, "..", p.Name+".log"))
	return string(b)
}
