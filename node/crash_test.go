package node_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// homingBin is the path of a homing binary built by TestMain, for tests that
// need real processes (kill -9 cannot be simulated in process).
var homingBin string

// filterBin is the example external filter (cmd/homing-filter-example).
var filterBin string

func buildBinary() (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "homing-bin-")
	if err != nil {
		return nil, err
	}
	homingBin, err = testkit.BuildHoming(dir)
	if err == nil {
		filterBin, err = testkit.BuildCommand(dir, "github.com/homing-mail/homing/cmd/homing-filter-example")
	}
	return func() { os.RemoveAll(dir) }, err
}

// TestKill9DuringSendsLosesNothing sends a stream of messages from several
// sessions, kills the node with SIGKILL in the middle of it, restarts it on
// the same data, and checks that every message that got 250 is in its
// mailbox exactly once (RFC 5321 §6.1: a 250 is a promise).
func TestKill9DuringSendsLosesNothing(t *testing.T) {
	p, _ := killDuringSends(t, 500, 300)
	if t.Failed() {
		t.Logf("node log:\n%s", p.Log())
	}
}

// TestKill9DuringLargeSendsLosesNothing is the same with messages of 200
// KiB, each streamed into a body file of the queue and hard-linked into
// its mailbox: every message that got 250 is stored exactly once after
// the restart, and once the queue is drained no body file is left that no
// record holds (orphans of the kill, written before their record, are
// removed when the stores open): the queue's directory is empty and each
// partition holds one file per stored message.
func TestKill9DuringLargeSendsLosesNothing(t *testing.T) {
	p, stored := killDuringSends(t, 200<<10, 60)
	c := admin.NewClient("http://"+p.Admin, "")
	wait.For(t, 30*time.Second, func() bool {
		q, err := c.Queue(context.Background())
		return err == nil && len(q) == 0
	}, "the queue drains after the restart")
	// Restart once more: whatever the kill left is gone at this start.
	p.Stop()
	p.Start()
	queueFiles := bodyFilesIn(t, filepath.Join(p.Data, "queue"))
	partitionFiles := bodyFilesIn(t, filepath.Join(p.Data, "accounts"))
	if len(queueFiles) != 0 || len(partitionFiles) != stored {
		t.Errorf("after the restarts: %d queue body files (want 0), %d partition body files for %d stored messages",
			len(queueFiles), len(partitionFiles), stored)
	}
	for _, f := range partitionFiles {
		if n := links(t, f); n != 1 {
			t.Errorf("%s has %d links, want 1 (the queue's name is gone)", f, n)
		}
	}
	t.Logf("%d large messages stored, %d body files", stored, len(partitionFiles))
	if t.Failed() {
		t.Logf("node log:\n%s", p.Log())
	}
}

// killDuringSends runs the kill -9 test with messages of about size bytes,
// killing the node after killAt acknowledgements, and returns the
// restarted node and the number of messages stored in all.
func killDuringSends(t *testing.T, size, killAt int) (*testkit.Process, int) {
	p := testkit.StartProcess(t, homingBin, "crash", "--partitions", "4", "--demo=false", "--log-level", "warn")
	c := admin.NewClient("http://"+p.Admin, "")
	const accounts, sessions = 12, 8
	for i := 0; i < accounts; i++ {
		if _, err := c.CreateAccount(context.Background(), admin.CreateAccount{
			Address: fmt.Sprintf("u%d@example.test", i), Password: "crash-test-pw"}); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu    sync.Mutex
		acked = map[string]string{} // Message-ID -> account
		count atomic.Int64
		wg    sync.WaitGroup
	)
	killed := make(chan struct{})
	for s := 0; s < sessions; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			cl, err := gosmtp.Dial(p.SMTP)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer cl.Close()
			if err := cl.Hello("crash.test"); err != nil {
				return
			}
			for i := 0; ; i++ {
				select {
				case <-killed:
					return
				default:
				}
				acct := fmt.Sprintf("u%d@example.test", (s+i)%accounts)
				mid := fmt.Sprintf("<s%d-m%d@crash.test>", s, i)
				msg := []byte(fmt.Sprintf("From: <load@crash.test>\r\nTo: <%s>\r\nMessage-ID: %s\r\nSubject: crash %d/%d\r\n\r\n%s\r\n",
					acct, mid, s, i, filler(size)))
				if err := sendOn(cl, acct, msg); err != nil {
					return // the node died: this message was not acknowledged
				}
				mu.Lock()
				acked[mid] = acct
				mu.Unlock()
				if count.Add(1) == int64(killAt) {
					p.Kill()
					close(killed)
				}
			}
		}(s)
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("senders stopped after %d messages, before the kill", count.Load())
	}
	t.Logf("%d messages acknowledged before SIGKILL", len(acked))

	p.Start() // on new ports: ask the restarted node
	c = admin.NewClient("http://"+p.Admin, "")
	verifyExactlyOnce(t, c, acked)
	stored := 0
	for i := 0; i < accounts; i++ {
		ms, err := c.Messages(context.Background(), fmt.Sprintf("u%d@example.test", i))
		if err != nil {
			t.Fatal(err)
		}
		stored += len(ms)
	}
	return p, stored
}

func sendOn(c *gosmtp.Client, rcpt string, msg []byte) error {
	if err := c.Mail("load@crash.test", nil); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return w.Close()
}

// filler is about n bytes of text in lines of 78.
func filler(n int) []byte {
	line := append(bytes.Repeat([]byte("x"), 76), '\r', '\n')
	out := bytes.Repeat(line, n/len(line))
	return append(out, bytes.Repeat([]byte("x"), n%len(line))...)
}
