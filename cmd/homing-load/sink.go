package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// smtpSink is Postfix's smtp-sink(1) on a loopback port: it speaks SMTP
// (PIPELINING, 8BITMIME and the rest announced) and throws every message
// away, so the load against it measures the protocol exchange alone, the
// ceiling no server that stores mail can pass. A message it answered 250
// counts as delivered.
type smtpSink struct {
	Addr string // 127.0.0.1:port

	cmd    *exec.Cmd
	out    bytes.Buffer
	exited chan struct{}
	err    error // exit status, valid after exited
}

// sinkCommand finds smtp-sink(1).
func sinkCommand() (string, error) {
	if p, err := exec.LookPath("smtp-sink"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/smtp-sink"); err == nil {
		return "/usr/sbin/smtp-sink", nil
	}
	return "", errors.New("smtp-sink is not on PATH nor in /usr/sbin (Debian: apt-get install postfix)")
}

// sinkArgs is the command line: as root it must switch to an unprivileged
// user (-u) after binding; -m lets every session of the load in at once;
// the backlog is the last argument.
func sinkArgs(addr string, sessions int, root bool) []string {
	var args []string
	if root {
		args = append(args, "-u", "nobody")
	}
	return append(args, "-m", fmt.Sprint(max(256, sessions+10)), addr, fmt.Sprint(max(1000, sessions)))
}

// startSink starts smtp-sink on a free loopback port and waits until it
// greets a connection, or timeout passes.
func startSink(ctx context.Context, sessions int, timeout time.Duration) (*smtpSink, error) {
	path, err := sinkCommand()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	s := &smtpSink{Addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), exited: make(chan struct{})}
	s.cmd = exec.Command(path, sinkArgs(s.Addr, sessions, os.Geteuid() == 0)...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting smtp-sink: %w", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(timeout)
	for {
		err := greets(ctx, s.Addr)
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("smtp-sink exited before it answered (%v): %s", s.err, strings.TrimSpace(s.out.String()))
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("smtp-sink did not greet on %s within %s: %v", s.Addr, timeout, err)
		}
		select {
		case <-s.exited:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// greets connects to addr and reads a 220 greeting.
func greets(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 512)
	n, err := c.Read(b)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(b[:n], []byte("220")) {
		return fmt.Errorf("greeting %q", b[:n])
	}
	c.Write([]byte("QUIT\r\n"))
	return nil
}

// Stop ends smtp-sink (SIGTERM, then SIGKILL after a few seconds).
func (s *smtpSink) Stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return errors.New("smtp-sink did not exit on SIGTERM and was killed")
	}
}
