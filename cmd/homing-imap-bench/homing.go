package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/homing-mail/homing/admin"
)

const benchUser, benchPass = "bench@example.test", "imap-timing-pw-1"

// homingNode is the spawned `homing serve`, on a fresh directory with
// loopback listeners on port 0 (it reports them in its ready file).
type homingNode struct {
	dir, imap, admin string
	cmd              *exec.Cmd
	exited           chan struct{}
}

// startHoming spawns the node on data (a new directory when ""), and
// creates the benchmark's account when create.
func startHoming(ctx context.Context, cfg config, data string, create, pprof bool, logf func(string, ...any)) (*homingNode, error) {
	bin, err := filepath.Abs(cfg.Homing)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "homing-imap-bench-")
	if err != nil {
		return nil, err
	}
	h := &homingNode{dir: dir, exited: make(chan struct{})}
	ready := filepath.Join(dir, "ready")
	if data == "" {
		data = filepath.Join(dir, "data")
	}
	args := []string{"serve", "--name", "bench", "--data", data, "--smtp", "127.0.0.1:0",
		"--admin", "127.0.0.1:0", "--imap", "127.0.0.1:0", "--pop3=", "--ready-file", ready, "--log-level", "warn"}
	if pprof {
		args = append(args, "--pprof")
	}
	logFile, err := os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		return nil, err
	}
	h.cmd = exec.Command(bin, args...)
	h.cmd.Stdout, h.cmd.Stderr, h.cmd.Dir = logFile, logFile, dir
	if err := h.cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() { _ = h.cmd.Wait(); logFile.Close(); close(h.exited) }()
	var r struct{ IMAP, Admin string }
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil && json.Unmarshal(b, &r) == nil && r.IMAP != "" {
			break
		}
		select {
		case <-h.exited:
			return nil, fmt.Errorf("homing exited during start-up:\n%s", h.logTail())
		case <-ctx.Done():
			h.stop(cfg.Keep)
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling the ready file
		}
		if time.Now().After(deadline) {
			h.stop(cfg.Keep)
			return nil, fmt.Errorf("homing did not start within a minute:\n%s", h.logTail())
		}
	}
	h.imap, h.admin = r.IMAP, r.Admin
	logf("Homing: node %s, IMAP %s, data in %s", bin, h.imap, dir)
	c := admin.NewClient("http://"+h.admin, "")
	for try := 0; create; try++ {
		_, err := c.CreateAccount(ctx, admin.CreateAccount{Address: benchUser, Password: benchPass})
		if err == nil {
			break
		}
		if try == 50 {
			h.stop(cfg.Keep)
			return nil, fmt.Errorf("creating the account: %w", err)
		}
		time.Sleep(100 * time.Millisecond) // the partitions may still be opening (503)
	}
	return h, nil
}

func (h *homingNode) logTail() string {
	b, _ := os.ReadFile(filepath.Join(h.dir, "node.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (h *homingNode) stop(keep bool) {
	if h.cmd.Process != nil {
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(30 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.exited
		}
	}
	if !keep {
		os.RemoveAll(h.dir)
	}
}

// fill APPENDs every message over sessions parallel sessions, in order per
// session (message i goes over session i % sessions).
func (h *homingNode) fill(ctx context.Context, msgs []message, sessions int, logf func(string, ...any)) error {
	var done atomic.Int64
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	clients, err := loginMany(h.imap, benchUser, benchPass, sessions)
	if err != nil {
		return err
	}
	for s, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for i := s; i < len(msgs); i += sessions {
				if ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				m := msgs[i]
				cmd := c.Append("INBOX", int64(len(m.Raw)), &imap.AppendOptions{Flags: m.Flags, Time: m.Date})
				if _, err := cmd.Write(m.Raw); err != nil {
					errs <- err
					return
				}
				if err := cmd.Close(); err != nil {
					errs <- err
					return
				}
				if _, err := cmd.Wait(); err != nil {
					errs <- fmt.Errorf("APPEND %d: %w", i, err)
					return
				}
				if n := done.Add(1); n%10000 == 0 {
					logf("Homing: %d of %d APPENDed", n, len(msgs))
				}
			}
			errs <- c.Logout().Wait()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// startProfile asks the node for a CPU profile of the next seconds; the
// returned function waits for it and writes it to file. The profile covers
// a fixed time, so start it with the load and let the load run at least as
// long.
func (h *homingNode) startProfile(file string, seconds int) func() error {
	ch := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", h.admin, seconds))
		if err != nil {
			ch <- err
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("profile: %s %s", resp.Status, b)
		}
		if err == nil {
			err = os.WriteFile(file, b, 0o644)
		}
		ch <- err
	}()
	return func() error { return <-ch }
}

// loginMany opens n sessions one after the other: Homing's guard counts
// the password checks in progress against the account's failure budget
// (5 from one network), so parallel logins of one account are refused.
func loginMany(addr, user, pass string, n int) ([]*imapclient.Client, error) {
	var cs []*imapclient.Client
	for range n {
		c, err := login(addr, user, pass)
		if err != nil {
			for _, c := range cs {
				c.Close()
			}
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func login(addr, user, pass string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("LOGIN %s at %s: %w", user, addr, err)
	}
	return c, nil
}
