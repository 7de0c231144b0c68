package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/damage"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/tlog"
)

// partitionDir is the directory of the account partition of addr in a
// node's data directory (the default account store, 4 partitions).
func partitionDir(data, addr string) string {
	return filepath.Join(data, "accounts", fmt.Sprintf("p%04d", mail.PartitionOf(addr, 4)))
}

// accountIn returns an address of example.test in partition p of 4.
func accountIn(p int) string {
	for i := 0; ; i++ {
		if a := fmt.Sprintf("user%d@example.test", i); mail.PartitionOf(a, 4) == p {
			return a
		}
	}
}

// markedText is a message text of about 8 KiB (in the mailbox's value
// log) that repeats marker.
func markedText(marker string) string {
	return strings.Repeat(marker+"\n", 8<<10/(len(marker)+1))
}

// getStatus does GET path on the node's admin endpoint and returns the
// status and the body.
func getStatus(t *testing.T, n *node.Node, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// A mailbox message whose bytes were in a damaged value log: after a
// restart the raw API answers 500 saying the message is damaged (and the
// node logs it), never 200 with 0 bytes; the listing and the message
// before it are served as before.
func TestRawOfADamagedMessageAnswers500(t *testing.T) {
	data := t.TempDir()
	const ann = "ann@example.test"
	at := func(c *node.Config) { c.Store.DataDir = data }
	n := testkit.StartNode(t, "n1", testkit.WithConfig(at))
	c := client(n)
	createAccount(t, c, ann, "pw-first-1", 0)
	for _, marker := range []string{"kept-text", "lost-text"} {
		msg := testkit.Message("bob@remote.test", ann, marker, markedText(marker))
		if _, err := testkit.Send(n.SMTPAddr(), "bob@remote.test", []string{ann}, msg); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, c, ann, map[string]int{"kept-text": 1, "lost-text": 2}[marker])
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	damage.Overwrite(t, partitionDir(data, ann), ".vlog", []byte("lost-text"))

	var lines tlog.Lines
	n = testkit.StartNode(t, "n1", testkit.WithConfig(at), testkit.WithConfig(func(c *node.Config) {
		c.Logger = tlog.New(t, "n1", tlog.KeepIn(&lines))
	}))
	c = client(n)
	ms, err := c.Messages(context.Background(), ann)
	if err != nil || len(ms) != 2 {
		t.Fatalf("listing after the damage: %+v, %v", ms, err)
	}
	if code, body := getStatus(t, n, "/api/v1/accounts/"+ann+"/messages/"+ms[0].ID+"/raw"); code != 200 || !strings.Contains(body, "kept-text") {
		t.Fatalf("the intact message: %d, %d bytes", code, len(body))
	}
	code, body := getStatus(t, n, "/api/v1/accounts/"+ann+"/messages/"+ms[1].ID+"/raw")
	if code != http.StatusInternalServerError || !strings.Contains(body, "damaged") {
		t.Fatalf("the damaged message: %d %q; want 500 saying it is damaged", code, body)
	}
	if lines.Count("mailbox message damaged", "id="+ms[1].ID) != 1 {
		t.Fatalf("no log line names the damaged message:\n%s", lines.String())
	}
}

// One account partition's files damaged (a truncated table, an emptied
// KEYREGISTRY): the node starts, reports the partition in
// /api/v1/partitions, /api/v1/nodes and /metrics, and the queue and the
// three other partitions deliver; mail for the damaged partition is
// answered temporarily.
func TestDamagedPartitionIsIsolated(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"truncated table", func(t *testing.T, dir string) { damage.TruncateTable(t, dir) }},
		{"emptied KEYREGISTRY", func(t *testing.T, dir string) { damage.EmptyKeyRegistry(t, dir) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mx := fakemx.Start(t)
			data := t.TempDir()
			opts := []testkit.NodeOption{withRoute("remote.test", mx.Addr), testkit.WithConfig(func(c *node.Config) { c.Store.DataDir = data })}
			n, err := node.Start(startCtx(t), withOpts(testkit.TestConfig(t, "n1"), opts...))
			if err != nil {
				t.Fatal(err)
			}
			var accounts []string
			for p := range 4 {
				accounts = append(accounts, accountIn(p))
				createAccount(t, client(n), accounts[p], "pw-12345", 0)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			const broken = 2
			tc.damage(t, partitionDir(data, accounts[broken]))

			n = testkit.StartNode(t, "n1", opts...)
			c := client(n)
			ps, err := c.Partitions(context.Background())
			if err != nil || len(ps) != 4 {
				t.Fatalf("partitions: %+v, %v", ps, err)
			}
			for _, p := range ps {
				if p.ID == broken {
					if p.Open || !p.Damaged || !strings.Contains(p.Error, "damaged") {
						t.Errorf("the damaged partition: %+v, want not open, with its error", p)
					}
				} else if !p.Open || p.Error != "" {
					t.Errorf("partition %d: %+v, want open", p.ID, p)
				}
			}
			ns, err := c.Nodes(context.Background())
			if err != nil || len(ns) != 1 || len(ns[0].Partitions) != 4 || ns[0].Partitions[broken].Error == "" {
				t.Errorf("nodes: %+v, %v; want the damaged partition's error", ns, err)
			}
			if _, body := getStatus(t, n, "/metrics"); !strings.Contains(body, "homing_partitions_failed 1\n") ||
				!strings.Contains(body, fmt.Sprintf(`homing_partition_open_failures_total{partition="%d",reason="damaged"}`, broken)) {
				t.Errorf("/metrics does not count the damaged partition")
			}

			// The other partitions and the queue deliver.
			for p, a := range accounts {
				if p == broken {
					continue
				}
				if _, err := testkit.Send(n.SMTPAddr(), "bob@remote.test", []string{a}, testkit.Message("bob@remote.test", a, "still here", "hi")); err != nil {
					t.Fatalf("mail to %s (partition %d): %v", a, p, err)
				}
				waitMessages(t, c, a, 1)
			}
			submit(t, c, accounts[0], "pw-12345", []string{"carl@remote.test"}, testkit.Message(accounts[0], "carl@remote.test", "out", "relayed"))
			mx.WaitMessages(t, 1, 20*time.Second)
			_, err = testkit.Send(n.SMTPAddr(), "bob@remote.test", []string{accounts[broken]}, testkit.Message("bob@remote.test", accounts[broken], "s", "b"))
			assertSMTPCode(t, err, 451, "4.4.3")
			if _, err := c.Account(context.Background(), accounts[broken]); !isStatus(err, http.StatusServiceUnavailable) {
				t.Errorf("an account of the damaged partition: %v, want 503", err)
			}
		})
	}
}

func isStatus(err error, status int) bool {
	var ae *admin.Error
	return errors.As(err, &ae) && ae.Status == status
}

// A queue whose files are damaged: the node refuses to start with the
// reason (an error wrapping storage.ErrDamaged that names the queue and
// says what to do), without a panic, and holds nothing open (the same
// start fails the same way again, not with a lock).
func TestStartWithADamagedQueueFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		says   string
	}{
		{"truncated table", func(t *testing.T, dir string) { damage.TruncateTable(t, dir) }, "table"},
		{"emptied KEYREGISTRY", func(t *testing.T, dir string) { damage.EmptyKeyRegistry(t, dir) }, "KEYREGISTRY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testkit.TestConfig(t, "n1")
			n, err := node.Start(startCtx(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := client(n)
			createAccount(t, c, "ann@example.test", "pw-12345", 0)
			submit(t, c, "ann@example.test", "pw-12345", []string{"ann@example.test"}, testkit.Message("ann@example.test", "ann@example.test", "s", "b"))
			waitMessages(t, c, "ann@example.test", 1)
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, filepath.Join(cfg.Store.DataDir, "queue"))
			for range 2 {
				n, err := node.Start(startCtx(t), cfg)
				if err == nil {
					n.Close()
					t.Fatal("a node started on a damaged queue")
				}
				if !errors.Is(err, storage.ErrDamaged) || errors.Is(err, storage.ErrLocked) ||
					!strings.Contains(err.Error(), "opening the queue in "+cfg.Store.DataDir) || !strings.Contains(err.Error(), tc.says) ||
					!strings.Contains(err.Error(), "homing check "+cfg.Store.DataDir) {
					t.Fatalf("Start = %v; want the queue's damage (%s) and what to do", err, tc.says)
				}
			}
		})
	}
}
