package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/wait"
)

// A partition on real storage whose directory gets a newer epoch (another
// node opened it after this one lost its lock) is closed at once: the next
// delivery is answered 451 and not stored, the state says why, and the
// actor opens the data again by itself (a new epoch, here where nobody
// else holds the lock) and stores the retried delivery once.
func TestPartitionClosesAtOnceOnANewerEpoch(t *testing.T) {
	const ann = "ann@example.test"
	root := t.TempDir()
	store, err := storage.NewAccountStore(root, 1, storage.Options{Owner: "be1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	pre, err := store.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := pre.CreateAccount(context.Background(), storage.Account{Address: ann}); err != nil {
		t.Fatal(err)
	}
	if err := pre.Close(); err != nil {
		t.Fatal(err)
	}
	stats := NewStats(nil)
	s := startSystem(t, testConfig(), Deps{OpenPartition: func(id int) (PartitionData, error) { return store.Open(id) }, Stats: stats})
	pid, rootCtx, ctx := s.LocalPartition(0), s.ActorSystem().Root, testCtx(t)
	if r := only(t, deliver(t, rootCtx, pid, deliverMsg("Q1", ann, ann, testBody("first")))); r.GetCode() != 250 {
		t.Fatalf("first delivery: %v", r)
	}
	st := s.PartitionStates(ctx)
	if len(st) != 1 || !st[0].Open || st[0].Epoch == 0 {
		t.Fatalf("PartitionStates = %+v, want open with an epoch", st)
	}
	epoch := st[0].Epoch

	// Another node writes the next epoch.
	path := filepath.Join(root, "p0000", "homing.epoch")
	writeEpochFile(t, path, epoch+1, "be2")

	r := only(t, deliver(t, rootCtx, pid, deliverMsg("Q2", ann, ann, testBody("second"))))
	if r.GetCode() != 451 || r.GetStatus() != string(mail.StatusLocalError) {
		t.Fatalf("delivery after a newer epoch = %v, want 451", r)
	}
	wait.For(t, waitTimeout, func() bool {
		st := s.PartitionStates(ctx)
		return len(st) == 1 && st[0].Open && st[0].Epoch == epoch+2 && strings.Contains(st[0].LastFailure, "fenced")
	}, "the partition reopened with epoch %d and says it was fenced: %+v", epoch+2, s.PartitionStates(ctx))
	if r := only(t, deliver(t, rootCtx, pid, deliverMsg("Q2", ann, ann, testBody("second")))); r.GetCode() != 250 {
		t.Fatalf("the retried delivery: %v", r)
	}
	p, err := store.Open(0)
	if err == nil {
		p.Close()
		t.Fatal("the store let a second open of the partition in")
	}
	s.Stop()
	p, err = store.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ms, err := p.Messages(ann, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("%d messages stored, want 2 (Q1 and Q2 once each): %+v", len(ms), ms)
	}
	if got := testutil.ToFloat64(stats.promLost.WithLabelValues("0", "fenced")); got != 1 {
		t.Errorf("homing_partition_failures_total{partition=0,reason=fenced} = %v, want 1", got)
	}
}

// A partition whose lock cannot be taken (ENOLCK: a filesystem whose locks
// fail) is not "held by another node": its state carries the error with
// LockError, the failure is counted with reason lock, and its deliveries
// are answered temporary.
func TestPartitionLockErrorIsReported(t *testing.T) {
	const ann = "ann@example.test"
	open := func(id int) (PartitionData, error) {
		return nil, fmt.Errorf("partition %d: %w: homing.lock: %w", id, storage.ErrLockFailed, syscall.ENOLCK)
	}
	stats := NewStats(nil)
	s := startSystem(t, testConfig(), Deps{OpenPartition: open, Stats: stats})
	pid, rootCtx, ctx := s.LocalPartition(0), s.ActorSystem().Root, testCtx(t)
	if r := only(t, deliver(t, rootCtx, pid, deliverMsg("Q1", ann, ann, testBody("x")))); r.GetCode() != 451 {
		t.Fatalf("delivery = %v, want 451", r)
	}
	st := s.PartitionStates(ctx)
	if len(st) != 1 || st[0].Open || !st[0].LockError || !strings.Contains(st[0].Error, "no locks available") || st[0].HeldBy != "" {
		t.Fatalf("PartitionStates = %+v, want a lock error, not open, not held by anyone", st)
	}
	if got := testutil.ToFloat64(stats.promOpenFailures.WithLabelValues("0", "lock")); got < 1 {
		t.Errorf("homing_partition_open_failures_total{reason=lock} = %v, want at least 1", got)
	}
}

func writeEpochFile(t *testing.T, path string, epoch uint64, owner string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"epoch": epoch, "owner": owner, "opened": "2026-12-01T00:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".test"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
