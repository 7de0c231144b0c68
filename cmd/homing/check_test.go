package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/damage"
)

// marked is an RFC 5322 message of about size bytes that repeats marker.
func marked(marker string, size int) []byte {
	b := []byte("From: a@example.test\r\nSubject: " + marker + "\r\n\r\n")
	for len(b) < size {
		b = append(b, marker+"\r\n"...)
	}
	return b
}

// addrIn returns an address of example.test in partition p of n.
func addrIn(p, n int) string {
	for i := 0; ; i++ {
		if a := fmt.Sprintf("user%d@example.test", i); mail.PartitionOf(a, n) == p {
			return a
		}
	}
}

// dataDir is a node's data directory written with the storage layer and
// closed: two queued messages, and an account store of 4 partitions with
// one account each; the account of partition 0 has two messages.
type dataDir struct {
	dir      string
	queueIDs []string
	accounts []string
	msgIDs   []string // of accounts[0]
}

func writeDataDir(t *testing.T) *dataDir {
	t.Helper()
	d := &dataDir{dir: t.TempDir()}
	ctx := context.Background()
	q, err := storage.OpenQueue(filepath.Join(d.dir, "queue"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range [][]byte{marked("intact-queued", 8000), marked("damaged-queued", 8000)} {
		id := mail.NewID(time.Now().Add(time.Duration(i) * time.Millisecond))
		env := &mail.Envelope{ID: id, From: "a@example.test", Size: int64(len(body)), Received: time.Now(),
			Recipients: []*mail.Recipient{{Key: 1, Addr: "b@remote.example", State: mail.StatePending}}}
		if err := q.Put(ctx, &mail.Message{Envelope: env, Body: mail.BytesBody(body)}); err != nil {
			t.Fatal(err)
		}
		d.queueIDs = append(d.queueIDs, id)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := storage.NewAccountStore(filepath.Join(d.dir, "accounts"), 4, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for p := range 4 {
		part, err := s.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		a := addrIn(p, 4)
		d.accounts = append(d.accounts, a)
		if err := part.CreateAccount(ctx, storage.Account{Address: a}); err != nil {
			t.Fatal(err)
		}
		if p != 0 {
			continue
		}
		for _, raw := range [][]byte{marked("intact-stored", 4000), marked("damaged-stored", 4000)} {
			res, err := part.Append(ctx, a, storage.AppendRequest{Raw: raw})
			if err != nil {
				t.Fatal(err)
			}
			d.msgIDs = append(d.msgIDs, res.ID)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *dataDir) partition(p int) string {
	return filepath.Join(d.dir, "accounts", fmt.Sprintf("p%04d", p))
}

func check(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"check"}, args...), &out, &errb)
	t.Logf("homing check %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String() + errb.String()
}

func wantLines(t *testing.T, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(out) {
			t.Errorf("output has no line matching %q", p)
		}
	}
}

// homing check on a data directory damaged four ways: a queue body and a
// mailbox message in damaged value logs, a partition with an emptied
// KEYREGISTRY, one with a truncated table. It reports each store, and
// --repair holds the queued message as damaged, removes the mailbox
// message and fixes the usage, and moves the KEYREGISTRY aside; the
// truncated table stays reported.
func TestCheckFindsAndRepairsDamage(t *testing.T) {
	d := writeDataDir(t)
	damage.Overwrite(t, filepath.Join(d.dir, "queue"), ".vlog", []byte("damaged-queued"))
	damage.TruncateValueLog(t, d.partition(0), []byte("damaged-stored"))
	damage.EmptyKeyRegistry(t, d.partition(1))
	damage.TruncateTable(t, d.partition(2))
	q := regexp.QuoteMeta

	code, out := check(t, d.dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (damage found)", code)
	}
	wantLines(t, out,
		`(?m)^queue \(.*\): DAMAGED, 1 damaged record\(s\) in 2 messages$`,
		`(?m)^  b/`+d.queueIDs[1]+`: .*data damaged: empty value`,
		`(?m)^partition 0 \(.*p0000\): DAMAGED, 1 damaged record\(s\) in 1 accounts, 2 messages$`,
		`(?m)^  r/`+q(d.accounts[0])+`\\x00#`+d.msgIDs[1]+`: .*data damaged: empty value`,
		`(?m)^partition 1 \(.*p0001\): DAMAGED, does not open: .*KEYREGISTRY`,
		`(?m)^partition 2 \(.*p0002\): DAMAGED, does not open: .*table 0000`,
		`(?m)^partition 3 \(.*p0003\): ok, 1 accounts, 0 messages$`,
		`(?m)^homing check: damage found in 4 of 5 stores$`)
	if strings.Contains(out, "repaired") {
		t.Errorf("a check without --repair repaired something")
	}

	code, out = check(t, "--repair", d.dir)
	if code != 1 {
		t.Fatalf("--repair: exit %d, want 1 (damage found)", code)
	}
	wantLines(t, out,
		`(?m)^partition 0 \(.*p0000\): DAMAGED, 2 damaged record\(s\) in 1 accounts, 2 messages$`,
		`(?m)^    repaired: held as damaged`,
		`(?m)^    repaired: removed \(metadata and bytes\)`,
		`(?m)^    repaired: set to \d+ bytes in 1 messages, next id 3$`,
		`(?m)^partition 1 \(.*\): repaired: KEYREGISTRY could not be read; moved to KEYREGISTRY.damaged-`,
		`(?m)^partition 1 \(.*p0001\): ok, 1 accounts, 0 messages$`,
		`(?m)^partition 2 \(.*p0002\): DAMAGED, does not open`,
		`(?m)^homing check: damage found and isolated in 3 of 5 stores$`)

	// What the repair left: the queued message held as damaged, the
	// mailbox without the damaged message and with its usage right, the
	// partition with the emptied registry open again.
	qs, err := storage.OpenQueue(filepath.Join(d.dir, "queue"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if env, err := qs.Envelope(d.queueIDs[1]); err != nil || !strings.Contains(env.Damaged, "data damaged") {
		t.Errorf("the damaged queued message after --repair: %+v, %v; want it held as damaged", env, err)
	}
	if env, err := qs.Envelope(d.queueIDs[0]); err != nil || env.Damaged != "" {
		t.Errorf("the intact queued message after --repair: %+v, %v", env, err)
	}
	if err := <-qs.Delete(d.queueIDs[1]); err != nil { // the administrator deletes it
		t.Fatal(err)
	}
	if err := qs.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := storage.NewAccountStore(filepath.Join(d.dir, "accounts"), 4, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p0, err := s.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p0.Messages(d.accounts[0], "")
	used, n, uerr := p0.Usage(d.accounts[0])
	if err != nil || len(ms) != 1 || ms[0].ID != d.msgIDs[0] || uerr != nil || n != 1 || used != ms[0].Size {
		t.Errorf("partition 0 after --repair: %+v (%v), usage %d bytes in %d (%v); want the intact message only, counted", ms, err, used, n, uerr)
	}
	if raw, err := p0.Raw(d.accounts[0], d.msgIDs[0]); err != nil || !bytes.Contains(raw, []byte("intact-stored")) {
		t.Errorf("the intact message after --repair: %v", err)
	}
	p1, err := s.Open(1)
	if err != nil {
		t.Fatalf("partition 1 after --repair: %v", err)
	}
	if _, err := p1.Account(d.accounts[1]); err != nil {
		t.Errorf("the account of partition 1 after --repair: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Once the truncated partition is restored (here: removed; a
	// partition that was never opened has no directory and is not
	// listed), the directory is clean.
	if err := os.RemoveAll(d.partition(2)); err != nil {
		t.Fatal(err)
	}
	code, out = check(t, d.dir)
	if code != 0 {
		t.Fatalf("after the repair: exit %d, want 0", code)
	}
	wantLines(t, out, `(?m)^homing check: 4 stores, no damage$`)
	if strings.Contains(out, "partition 2") {
		t.Errorf("a partition without a directory is listed")
	}
}

// A store that a running node holds is not checked: exit 2 and a message
// that says so.
func TestCheckRefusesAStoreInUse(t *testing.T) {
	d := writeDataDir(t)
	q, err := storage.OpenQueue(filepath.Join(d.dir, "queue"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	code, out := check(t, d.dir, "--repair")
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	wantLines(t, out, `(?m)^queue \(.*\): not checked: in use by a running node \(stop it first\)`,
		`(?m)^homing check: 1 of 5 stores could not be checked`)
	if _, err := q.Envelope(d.queueIDs[0]); err != nil {
		t.Fatalf("the queue in use: %v", err)
	}
}

func TestCheckUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"a", "b"}, {"--nosuch", "a"}} {
		if code, _ := check(t, args...); code != 2 {
			t.Errorf("homing check %v: exit %d, want 2", args, code)
		}
	}
	if code, out := check(t, "--help"); code != 0 || !strings.HasPrefix(out, "usage: homing check DATA_DIR") {
		t.Errorf("homing check --help: exit %d", code)
	}
}
