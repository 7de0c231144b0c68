package node_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/fakemx"
	"github.com/homing-mail/homing/testkit/wait"
)

// largeMessage is an RFC 5322 message of about size bytes (above the
// queue's 64 KiB inline threshold it is stored in a file) whose text
// repeats marker.
func largeMessage(from, to, marker string, size int) []byte {
	line := marker + " 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
	return testkit.Message(from, to, marker, strings.Repeat(line+"\n", size/(len(line)+2)))
}

// queueID is the id in a "OK queued as ID" reply.
func queueID(reply string) string {
	f := strings.Fields(reply)
	return f[len(f)-1]
}

// bodyFilesIn lists the body files under root (a data directory): the
// queue's and every partition's.
func bodyFilesIn(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Base(filepath.Dir(path)) == "bodies" {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func links(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(fi.Sys().(*syscall.Stat_t).Nlink)
}

// Issue #14, "one copy for a message to 100 local recipients": a 1 MiB
// message to three local accounts on one node is one inode on disk. The
// queue wrote it once as it was received; each mailbox hard-linked it into
// its partition; the queue unlinked its own name when it was done. The raw
// API streams each copy back. (Deleting one name keeps the others:
// TestAppendLinksTheQueuedBody in storage.)
func TestOneCopyOnDiskForTheQueueAndEveryMailbox(t *testing.T) {
	data := t.TempDir()
	n := testkit.StartNode(t, "n1", testkit.WithConfig(func(c *node.Config) { c.Store.DataDir = data }))
	c := client(n)
	accounts := []string{accountIn(0), accountIn(1), accountIn(2)}
	for _, a := range accounts {
		createAccount(t, c, a, "pw-for-tests-123", 0)
	}
	msg := largeMessage("bob@remote.test", accounts[0], "one-inode", 1<<20)
	if _, err := testkit.Send(n.SMTPAddr(), "bob@remote.test", accounts, msg); err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		waitMessages(t, c, a, 1)
	}
	wait.For(t, 10*time.Second, func() bool { return len(bodyFilesIn(t, filepath.Join(data, "queue"))) == 0 },
		"the queue's name of the body is unlinked once it is delivered")
	files := bodyFilesIn(t, data)
	if len(files) != len(accounts) {
		t.Fatalf("body files %v, want one name per mailbox", files)
	}
	first, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(first, fi) || links(t, f) != uint64(len(accounts)) {
			t.Fatalf("%s: same file as %s: %v, %d links; want one inode with %d links", f, files[0], os.SameFile(first, fi), links(t, f), len(accounts))
		}
	}
	for _, a := range accounts {
		ms := waitMessages(t, c, a, 1)
		code, body := getStatus(t, n, "/api/v1/accounts/"+a+"/messages/"+ms[0].ID+"/raw")
		if code != 200 || !strings.HasPrefix(string(withoutAuthResults([]byte(body))), "Received: ") || !strings.HasSuffix(body, string(msg)) || int64(len(body)) != ms[0].Size {
			t.Fatalf("%s's copy: %d, %d bytes (listed %d)", a, code, len(body), ms[0].Size)
		}
	}
}

// overwrite changes a few bytes in the middle of a file, keeping its length.
func overwrite(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("DAMAGE"), fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// A queued body file that is damaged (overwritten in place: its length is
// right, its CRC-32C is not) is held as damaged in the queue: a relay
// reads it to its end, finds the damage and drops the connection without
// the final dot (the MX never takes it); a local delivery checks it before
// linking it and stores nothing. A mailbox's body file damaged the same
// way answers 500 in the raw API, never 200 with bytes that are not what
// was stored.
func TestDamagedBodyFiles(t *testing.T) {
	mx := fakemx.Start(t)
	tempFail := &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	mx.FailRcpt(func(string) bool { return true }, tempFail)
	data := t.TempDir()
	n := testkit.StartNode(t, "n1", withRoute("remote.test", mx.Addr), testkit.WithConfig(func(c *node.Config) { c.Store.DataDir = data }))
	c := client(n)
	ctx := context.Background()
	full, ann := accountIn(0), accountIn(1)
	createAccount(t, c, full, "pw-fifth-1", 1000) // over quota: the message waits in the queue
	createAccount(t, c, ann, "pw-first-1", 0)

	// One message for a remote recipient (deferred by the MX), one for a
	// local account that is full; each waits in the queue with its file.
	ids := []string{submit(t, c, ann, "pw-first-1", []string{"bob@remote.test"}, largeMessage(ann, "bob@remote.test", "damaged-relayed", 300<<10))}
	reply, err := testkit.Send(n.SMTPAddr(), "carl@remote.test", []string{full}, largeMessage("carl@remote.test", full, "damaged-local", 300<<10))
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, queueID(reply))
	for _, id := range ids {
		wait.For(t, 20*time.Second, func() bool {
			e, err := c.QueueEntry(ctx, id)
			return err == nil && e.State == "deferred"
		}, "message %s deferred", id)
	}
	files := bodyFilesIn(t, filepath.Join(data, "queue"))
	if len(files) != 2 {
		t.Fatalf("queued body files %v, want 2", files)
	}
	for _, f := range files {
		overwrite(t, f)
	}
	mx.FailRcpt(nil, nil)
	for _, id := range ids {
		if err := c.QueueAction(ctx, id, "retry"); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		var e admin.QueueEntry
		wait.For(t, 20*time.Second, func() bool {
			var err error
			e, err = c.QueueEntry(ctx, id)
			return err == nil && e.State == "damaged"
		}, "message %s held as damaged: %+v", id, e)
		if !strings.Contains(e.LastError, "CRC-32C mismatch") {
			t.Errorf("%s: last error %q, want the CRC-32C mismatch", id, e.LastError)
		}
	}
	if got := mx.Messages(); len(got) != 0 {
		t.Fatalf("the MX accepted %d messages with a damaged body", len(got))
	}
	if ms, err := c.Messages(ctx, full); err != nil || len(ms) != 0 {
		t.Fatalf("the full account holds %d messages (%v); a damaged body must not be stored", len(ms), err)
	}

	// A mailbox's copy damaged: 500, and an intact one is served.
	for _, marker := range []string{"intact", "broken"} {
		if _, err := testkit.Send(n.SMTPAddr(), "carl@remote.test", []string{ann}, largeMessage("carl@remote.test", ann, marker, 200<<10)); err != nil {
			t.Fatal(err)
		}
	}
	ms := waitMessages(t, c, ann, 2)
	wait.For(t, 10*time.Second, func() bool { return len(bodyFilesIn(t, partitionDir(data, ann))) == 2 }, "two files in ann's partition")
	var broken string
	for _, f := range bodyFilesIn(t, partitionDir(data, ann)) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("broken 0123")) {
			broken = f
		}
	}
	overwrite(t, broken)
	codes := map[int]int{}
	for _, m := range ms {
		code, body := getStatus(t, n, "/api/v1/accounts/"+ann+"/messages/"+m.ID+"/raw")
		codes[code]++
		if code == http.StatusInternalServerError && !strings.Contains(body, "damaged") {
			t.Fatalf("500 without saying why: %q", body)
		}
		if code == 200 && (!strings.Contains(body, "intact 0123") || int64(len(body)) != m.Size) {
			t.Fatalf("200 for the wrong message or cut short: %d of %d bytes", len(body), m.Size)
		}
	}
	if codes[200] != 1 || codes[500] != 1 {
		t.Fatalf("raw answers %v; want one 200 (intact) and one 500 (damaged)", codes)
	}
}

// Issue #9, "the cluster channel carries large bodies in chunks": a 5 MiB
// message to a frontend for an account on a backend (real processes, mTLS
// channel) goes in the Deliver by reference; the backend's account actor
// pulls it from the frontend's body server in 256 KiB pieces into a file
// of its partition, checks it and appends it; the frontend drops its copy.
// The raw API on the frontend streams it back from the backend in pieces.
func TestClusterDeliversALargeBodyInChunks(t *testing.T) {
	c := newCluster(t)
	c.Add("fe", mail.RoleFrontend)
	c.Add("be1", mail.RoleBackend)
	c.WaitOwners(t, "be1")
	fe := c.Admin("fe")
	const ann = "ann@example.test"
	createAccount(t, fe, ann, "pw-first-1", 0)
	msg := largeMessage("bob@remote.test", ann, "chunked", 5<<20)
	reply, err := testkit.Send(c.SMTPAddr("fe"), "bob@remote.test", []string{ann}, msg)
	if err != nil {
		t.Fatal(err)
	}
	id := queueID(reply)
	ms := waitMessages(t, fe, ann, 1)
	raw, err := fe.RawMessage(context.Background(), ann, ms[0].ID)
	if err != nil || !bytes.HasSuffix(raw, msg) || int64(len(raw)) != ms[0].Size {
		t.Fatalf("the stored message read through the frontend: %d bytes (listed %d), %v", len(raw), ms[0].Size, err)
	}
	steps, err := fe.Journey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	fetched := false
	for _, s := range steps {
		if s.Event == "fetched" && strings.Contains(s.Detail, "pieces") && s.Node == "be1" {
			fetched = true
		}
	}
	if !fetched {
		t.Fatalf("the journey does not show the body fetched by be1 in pieces: %+v", steps)
	}
	if files := bodyFilesIn(t, c.AccountStore()); len(files) != 1 {
		t.Fatalf("body files in the account store: %v, want the one fetched", files)
	}
	wait.For(t, 20*time.Second, func() bool { return len(bodyFilesIn(t, filepath.Join(c.Process("fe").Data, "queue"))) == 0 },
		"the frontend's queue drops its copy once the backend has it")
}
