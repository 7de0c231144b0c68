package storage

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestAckedWritesSurviveKill9: a child process commits keys from 8
// goroutines and prints each key once Commit returned nil; the parent kills
// it with SIGKILL mid-stream and checks that every printed (acknowledged)
// key is in the reopened DB with its value.
//
// A kill -9 leaves the page cache alone, so this proves that badger
// recovers every acknowledged write from its WAL and value log after an
// abrupt stop, not that the sync reached the platters; that rests on
// SyncWrites=true (TestOptionsDefaults) and badger's sync per transaction.
func TestAckedWritesSurviveKill9(t *testing.T) {
	t.Run("per-DB sync", func(t *testing.T) { testAckedWritesSurviveKill9(t, helperCommitLoop) })
	t.Run("shared syncfs", func(t *testing.T) { testAckedWritesSurviveKill9(t, helperCommitLoopSyncfs) })
}

func testAckedWritesSurviveKill9(t *testing.T, role string) {
	dir := t.TempDir()
	c := startHelper(t, role, dir)
	var acked [][]byte
	for len(acked) < 400 {
		line, ok := c.readLine()
		if !ok {
			t.Fatalf("child stopped after %d acks", len(acked))
		}
		acked = append(acked, []byte(line))
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Lines already written before the kill were acknowledged too.
	for {
		line, ok := c.readLine()
		if !ok {
			break
		}
		acked = append(acked, []byte(line))
	}
	_ = c.cmd.Wait()
	if c.cmd.ProcessState.Success() {
		t.Fatal("child exited normally; it was meant to be killed")
	}

	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer db.Close()
	for _, k := range acked {
		var i int
		if _, err := fmt.Sscanf(string(k), "k%d", &i); err != nil {
			t.Fatalf("bad ack line %q", k)
		}
		v, err := db.Get(k)
		if err != nil {
			t.Fatalf("acknowledged key %s lost after kill -9: %v", k, err)
		}
		if !bytes.Equal(v, durableValue(i)) {
			t.Fatalf("acknowledged key %s has a wrong value after kill -9", k)
		}
	}
	t.Logf("%d acknowledged keys, all present after kill -9", len(acked))
}

// TestFenceInProcess: a directory open in this process cannot be opened
// again, through Open, OpenQueue or an AccountStore.
func TestFenceInProcess(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if _, err := OpenQueue(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenQueue of an open dir = %v, want ErrLocked", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	s1, err := NewAccountStore(root, 2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := NewAccountStore(root, 2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	p, err := s1.Open(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Open(1); !errors.Is(err, ErrLocked) {
		t.Fatalf("same store, same partition = %v, want ErrLocked", err)
	}
	if _, err := s2.Open(1); !errors.Is(err, ErrLocked) {
		t.Fatalf("other store, same partition = %v, want ErrLocked (badger's flock)", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p2, err := s2.Open(1)
	if err != nil {
		t.Fatalf("Open after the owner closed: %v", err)
	}
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFenceAcrossProcesses: while a child process holds a directory, Open
// fails with ErrLocked; after SIGKILL of the child, Open succeeds.
func TestFenceAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	c := startHelper(t, helperHold, dir)
	if line, ok := c.readLine(); !ok || line != "ready" {
		t.Fatalf("child said %q, want ready", line)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while a child holds the dir = %v, want ErrLocked", err)
	}
	c.kill(t)
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after kill -9 of the holder: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
