package node_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/wait"
)

// Issue #14, "RSS does not grow with the bytes stored beyond a configured
// cache": a real `homing serve --map-cache 8MiB` stores ~30 MB of 40 KiB
// messages (each written into the queue's and the partition's
// memory-mapped value logs: ~60 MB through mappings), and its RssFile
// comes back within the cache (plus one trimming interval's growth) of
// what it was before; without the trimmer it stays ~60 MB higher. Every
// message is stored and reads back whole after its pages were handed back.
func TestMappedStoreFilesStayWithinTheMapCache(t *testing.T) {
	p := testkit.StartProcess(t, measuredBinary(), "mapcache", "--demo=false", "--log-level", "warn", "--map-cache", "8MiB")
	pid := readyPID(t, p)
	c := admin.NewClient("http://"+p.Admin, "")
	ctx := context.Background()
	const rcpt = "many@example.test"
	if _, err := c.CreateAccount(ctx, admin.CreateAccount{Address: rcpt, Password: "mapped-pages-1234"}); err != nil {
		t.Fatal(err)
	}
	before := procStatus(pid, "RssFile")
	if before == 0 {
		t.Fatal("cannot read the node's RssFile from /proc")
	}
	const messages, senders = 800, 4
	line := "0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.\r\n"
	body := strings.Repeat(line, 40<<10/len(line))
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := s; i < messages; i += senders {
				msg := testkit.Message("load@mapcache.test", rcpt, fmt.Sprintf("mapped %d", i), body)
				if _, err := testkit.Send(p.SMTP, "load@mapcache.test", []string{rcpt}, msg); err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wait.For(t, 2*time.Minute, func() bool {
		ms, err := c.Messages(ctx, rcpt)
		return err == nil && len(ms) == messages
	}, "the %d messages are stored", messages)
	// The trimmer looks every second; 8 MiB of cache and 8 MiB of slack
	// (the node's own text and tables it reads meanwhile).
	const bound = 16 << 10 // KiB
	var after int
	wait.For(t, 30*time.Second, func() bool {
		after = procStatus(pid, "RssFile")
		return after-before <= bound
	}, "RssFile back within the map cache of its start (%d KiB)", before)
	t.Logf("RssFile %d MiB before, %d MiB after storing %d x %d KiB (%d MiB through mappings)",
		before>>10, after>>10, messages, len(body)>>10, 2*messages*len(body)>>20)
	ms, err := c.Messages(ctx, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []int{0, len(ms) / 2, len(ms) - 1} {
		raw, err := c.RawMessage(ctx, rcpt, ms[m].ID)
		if err != nil || !strings.Contains(string(raw), body[:1000]) || len(raw) < len(body) {
			t.Fatalf("message %s reads back %d bytes (%v), want the whole body", ms[m].ID, len(raw), err)
		}
	}
}
