package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// maildirs makes n Maildirs' new/ and tmp/ under a temporary directory.
func maildirs(t *testing.T, n int) (tmps, news []string) {
	t.Helper()
	base := t.TempDir()
	for i := range n {
		for _, sub := range []string{"tmp", "new"} {
			d := filepath.Join(base, fmt.Sprintf("user%d", i), sub)
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		tmps = append(tmps, filepath.Join(base, fmt.Sprintf("user%d", i), "tmp"))
		news = append(news, filepath.Join(base, fmt.Sprintf("user%d", i), "new"))
	}
	return tmps, news
}

// deliver does what a Maildir delivery agent does: write the file in
// tmp/, link it into new/, remove the tmp/ name.
func deliver(t *testing.T, tmp, news string, k int) {
	name := fmt.Sprintf("%d.M%d.bench", time.Now().UnixNano(), k)
	if err := os.WriteFile(filepath.Join(tmp, name), []byte("Subject: x\r\n\r\nx\r\n"), 0o600); err != nil {
		t.Error(err)
		return
	}
	if err := os.Link(filepath.Join(tmp, name), filepath.Join(news, name)); err != nil {
		t.Error(err)
	}
	os.Remove(filepath.Join(tmp, name))
}

func TestMaildirCounterWaitsForTheFiles(t *testing.T) {
	tmps, news := maildirs(t, 3)
	c, err := newMaildirCounter(news)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := range 30 {
			deliver(t, tmps[k%3], news[k%3], k)
		}
	}()
	start := time.Now()
	w := c.wait(context.Background(), 30, time.Minute)
	<-done
	if w.Err != nil || w.Delivered != 30 || w.Reached.Before(start) {
		t.Fatalf("wait %+v", w)
	}
	if n, err := c.Count(); n != 30 || err != nil {
		t.Errorf("Count = %d, %v", n, err)
	}
	// The tmp/ files are gone and were not counted.
	for _, d := range tmps {
		if es, _ := os.ReadDir(d); len(es) != 0 {
			t.Errorf("%s not empty", d)
		}
	}
}

// Fewer files than wanted: the wait ends at its deadline and says how
// many there were.
func TestMaildirCounterTimesOut(t *testing.T) {
	tmps, news := maildirs(t, 2)
	c, err := newMaildirCounter(news)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deliver(t, tmps[0], news[0], 1)
	deliver(t, tmps[1], news[1], 2)
	w := c.wait(context.Background(), 3, 50*time.Millisecond)
	if !w.Reached.IsZero() || w.Delivered != 2 || w.Err == nil || !strings.Contains(w.Err.Error(), "2 of 3 messages") {
		t.Fatalf("wait %+v", w)
	}
}

func TestMaildirCounterNeedsTheDirectories(t *testing.T) {
	_, err := newMaildirCounter([]string{filepath.Join(t.TempDir(), "missing", "new")})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("err %v", err)
	}
}
