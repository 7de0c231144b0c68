package node_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit"
)

func startCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A start that fails on a listener says which one and why, closes what it
// had started (the data directory is free again: the next start on it
// succeeds), and does not panic.
func TestStartOnABusyPortSaysWhichAndFreesWhatItOpened(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct {
		flag string
		set  func(*node.Config)
	}{
		{"--smtp", func(c *node.Config) { c.Listen.SMTP = busy.Addr().String() }},
		{"--submission", func(c *node.Config) { c.Listen.Submission = busy.Addr().String() }},
		{"--admin", func(c *node.Config) { c.Admin.Addr = busy.Addr().String() }},
	} {
		t.Run(c.flag, func(t *testing.T) {
			cfg := testkit.TestConfig(t, "busy")
			c.set(&cfg)
			n, err := node.Start(startCtx(t), cfg)
			if err == nil {
				n.Close()
				t.Fatalf("Start on a busy %s port succeeded", c.flag)
			}
			want := c.flag + " " + busy.Addr().String()
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("error %q, want it to name %q and say the address is in use", err, want)
			}
			ok := testkit.TestConfig(t, "busy")
			ok.Store.DataDir = cfg.Store.DataDir
			n, err = node.Start(startCtx(t), ok)
			if err != nil {
				t.Fatalf("a start on the same data directory after the failed one: %v", err)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A data directory another node holds is refused with the storage layer's
// reason (ErrLocked), not a panic; the running node is not disturbed.
func TestStartOnALockedDataDirectorySaysSo(t *testing.T) {
	cfg := testkit.TestConfig(t, "first")
	first, err := node.Start(startCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second := testkit.TestConfig(t, "second")
	second.Store.DataDir = cfg.Store.DataDir
	n, err := node.Start(startCtx(t), second)
	if err == nil {
		n.Close()
		t.Fatal("a second node started on a data directory in use")
	}
	if !errors.Is(err, storage.ErrLocked) || !strings.Contains(err.Error(), "opening the queue in "+cfg.Store.DataDir) {
		t.Fatalf("error %q, want opening the queue in %s, wrapping storage.ErrLocked", err, cfg.Store.DataDir)
	}
	if _, err := testkit.Send(first.SMTPAddr(), "a@remote.example", []string{"nobody@example.test"}, testkit.Message("a@remote.example", "nobody@example.test", "s", "b")); err == nil {
		t.Fatal("the first node accepted mail for an unknown user")
	} else if !strings.Contains(err.Error(), "550") {
		t.Fatalf("the first node does not answer as before: %v", err)
	}
}
