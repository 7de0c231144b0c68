package interop

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
)

// node is a real `homing serve` process with its listeners on loopback
// port 0.
type node struct {
	p     *testkit.Process
	admin *admin.Client
}

func startNode(t *testing.T, name string) *node {
	t.Helper()
	p := testkit.StartProcess(t, homingBin, name, "--demo=false", "--log-level", "warn")
	n := &node{p: p, admin: admin.NewClient("http://"+p.Admin, "")}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, p.Log())
		}
	})
	return n
}

func (n *node) createAccount(t *testing.T, address, password string) {
	t.Helper()
	if _, err := n.admin.CreateAccount(context.Background(), admin.CreateAccount{Address: address, Password: password}); err != nil {
		t.Fatal(err)
	}
}

// login opens an IMAP session as address over plain IMAP on loopback (the
// server allows LOGIN there).
func (n *node) login(t *testing.T, address, password string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(n.p.IMAP, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(address, password).Wait(); err != nil {
		t.Fatalf("LOGIN %s: %v", address, err)
	}
	return c
}

// appendMessage APPENDs raw to folder with flags and returns its UID.
func appendMessage(c *imapclient.Client, folder, raw string, flags []imap.Flag, date time.Time) (imap.UID, error) {
	cmd := c.Append(folder, int64(len(raw)), &imap.AppendOptions{Flags: flags, Time: date})
	if _, err := cmd.Write([]byte(raw)); err != nil {
		return 0, err
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	d, err := cmd.Wait()
	if err != nil {
		return 0, err
	}
	return d.UID, nil
}

// appendMany APPENDs msgs[i] with flags[i] to folder over sessions
// parallel sessions and returns the UID of each.
func (n *node) appendMany(t *testing.T, address, password, folder string, msgs []string, flags [][]imap.Flag, sessions int) []imap.UID {
	t.Helper()
	uids := make([]imap.UID, len(msgs))
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	for s := 0; s < sessions; s++ {
		c := n.login(t, address, password)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := s; i < len(msgs); i += sessions {
				uid, err := appendMessage(c, folder, msgs[i], flags[i], time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i)*time.Minute))
				if err != nil {
					errs <- fmt.Errorf("APPEND %d: %w", i, err)
					return
				}
				uids[i] = uid
			}
			errs <- c.Logout().Wait()
		}()
	}
	wg.Wait()
	for s := 0; s < sessions; s++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return uids
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
