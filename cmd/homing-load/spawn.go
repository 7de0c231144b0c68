package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// spawned is a homing node started by --spawn on a fresh directory.
type spawned struct {
	Dir     string // temporary directory: data/ and node.log
	LogPath string
	SMTP    string // 127.0.0.1:port
	Admin   string // 127.0.0.1:port

	dns    *loadDNS // the node's DNS server (startDNS)
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been waited for
	err    error         // its exit status, valid after exited
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. The ports are
// free when the function returns; another process could take one before
// the node binds it, which then fails the start clearly.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// serveArgs is the command line of the spawned node: `homing serve`, or
// with --cluster `homing dev` (one frontend and two backends as real
// processes, which needs ranges of consecutive ports: gossipBase is the
// first of six).
func serveArgs(cfg config, dataDir, smtpAddr, adminAddr string, gossipBase int) []string {
	if cfg.Cluster {
		_, sp, _ := net.SplitHostPort(smtpAddr)
		_, ap, _ := net.SplitHostPort(adminAddr)
		args := []string{"dev", "--data", dataDir, "--smtp-port", sp, "--admin-port", ap,
			"--gossip-port", fmt.Sprint(gossipBase), "--domain", cfg.Domain}
		if cfg.DNS == "" {
			return append(args, cfg.ServeArgs...)
		}
		// After "--", homing dev passes arguments to every node.
		rest := cfg.ServeArgs
		if len(rest) > 0 && rest[0] == "--" {
			rest = rest[1:]
		}
		return append(append(args, "--", "--dns", cfg.DNS), rest...)
	}
	args := []string{"serve", "--data", dataDir, "--smtp", smtpAddr, "--admin", adminAddr,
		"--domains", cfg.Domain, "--name", "bench", "--pop3="}
	if cfg.DNS != "" {
		args = append(args, "--dns", cfg.DNS)
	}
	return append(args, cfg.ServeArgs...)
}

// freeRange returns the first port of n consecutive free ports on
// 127.0.0.1, trying random bases in 20000-59999.
func freeRange(n int) (int, error) {
	for try := 0; try < 200; try++ {
		base := 20000 + int(time.Now().UnixNano()/7+int64(try)*7919)%40000
		ok := true
		var ls []net.Listener
		for i := 0; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, errors.New("no range of free ports found")
}

// spawnNode starts cfg.Spawn on a new temporary directory and loopback
// ports, and waits until GET /api/v1/settings answers (ready decides),
// the process exits, or cfg.StartTimeout passes. On failure nothing is
// left running, and the directory is removed unless cfg.Keep.
func spawnNode(ctx context.Context, cfg config, ready func(ctx context.Context, adminAddr string) error) (*spawned, error) {
	// The node runs in its directory, so a relative path would be
	// looked up there.
	bin, err := filepath.Abs(cfg.Spawn)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "homing-load-")
	if err != nil {
		return nil, err
	}
	n := &spawned{Dir: dir, LogPath: filepath.Join(dir, "node.log"), exited: make(chan struct{})}
	if cfg.DNS == "" {
		// The node's checks of the load's mail ask a server of ours.
		d, err := startDNS(mailDomain(cfg.From))
		if err != nil {
			n.cleanup(cfg.Keep)
			return nil, err
		}
		n.dns, cfg.DNS = d, d.addr
	}
	var ports []int
	gossipBase := 0
	if cfg.Cluster {
		base, err := freeRange(12)
		if err != nil {
			n.cleanup(cfg.Keep)
			return nil, err
		}
		ports, gossipBase = []int{base, base + 3}, base+6
	} else if ports, err = freePorts(2); err != nil {
		n.cleanup(cfg.Keep)
		return nil, err
	}
	n.SMTP = fmt.Sprintf("127.0.0.1:%d", ports[0])
	n.Admin = fmt.Sprintf("127.0.0.1:%d", ports[1])
	logf, err := os.Create(n.LogPath)
	if err != nil {
		n.cleanup(cfg.Keep)
		return nil, err
	}
	n.cmd = exec.Command(bin, serveArgs(cfg, filepath.Join(dir, "data"), n.SMTP, n.Admin, gossipBase)...)
	n.cmd.Stdout = logf
	n.cmd.Stderr = logf
	n.cmd.Dir = dir
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		n.cleanup(cfg.Keep)
		return nil, fmt.Errorf("starting %s: %w", cfg.Spawn, err)
	}
	go func() {
		n.err = n.cmd.Wait()
		logf.Close()
		close(n.exited)
	}()

	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	for {
		err := ready(sctx, n.Admin)
		if err == nil {
			return n, nil
		}
		select {
		case <-n.exited:
			e := fmt.Errorf("the node exited before it was ready (%v); its log:\n%s", n.err, n.logTail(20))
			n.cleanup(cfg.Keep)
			return nil, e
		case <-sctx.Done():
			n.Stop(cfg.StopTimeout, cfg.Keep)
			return nil, fmt.Errorf("the node did not answer on %s within %s (%v); its log:\n%s", n.Admin, cfg.StartTimeout, err, n.logTail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM, and SIGKILL if the node has not exited after grace;
// then it removes the directory unless keep. It returns the exit status
// when the node did not stop cleanly on SIGTERM.
func (n *spawned) Stop(grace time.Duration, keep bool) error {
	defer n.cleanup(keep)
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		n.cmd.Process.Kill()
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-n.exited:
		if n.err != nil {
			return fmt.Errorf("the node exited with %v", n.err)
		}
		return nil
	case <-t.C:
		n.cmd.Process.Kill()
		<-n.exited
		return fmt.Errorf("the node did not stop within %s of SIGTERM and was killed", grace)
	}
}

func (n *spawned) cleanup(keep bool) {
	if n.dns != nil {
		n.dns.stop()
		n.dns = nil
	}
	if !keep {
		os.RemoveAll(n.Dir)
	}
}

// logTail returns the last lines of the node's log.
func (n *spawned) logTail(lines int) string {
	f, err := os.Open(n.LogPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const tail = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > tail {
		f.Seek(st.Size()-tail, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	parts := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return string(bytes.Join(parts, []byte("\n")))
}
