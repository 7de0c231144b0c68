package node_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
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
	killAt := int64(300)
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
					acct, mid, s, i, bytes.Repeat([]byte("x"), 500)))
				if err := sendOn(cl, acct, msg); err != nil {
					return // the node died: this message was not acknowledged
				}
				mu.Lock()
				acked[mid] = acct
				mu.Unlock()
				if count.Add(1) == killAt {
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
	verifyExactlyOnce(t, admin.NewClient("http://"+p.Admin, ""), acked)
	if t.Failed() {
		t.Logf("node log:\n%s", p.Log())
	}
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
