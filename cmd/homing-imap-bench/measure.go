package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// target is one product's IMAP server and account.
type target struct {
	name, addr, user, pass string
}

// op is one timed operation: run logs in (not timed), times what the
// operation does and checks the answer.
type op struct {
	name string
	run  func(t *target) (time.Duration, error)
}

// bodies is how many whole messages the body fetch reads.
const bodies = 100

func singleOps(n int) []op {
	return []op{
		{"SELECT INBOX", func(t *target) (time.Duration, error) { return t.timeSelect(n) }},
		{"UID FETCH 1:* (FLAGS)", func(t *target) (time.Duration, error) {
			return t.timeSelected(n, func(c *imapclient.Client) error { return fetchFlags(c, n) })
		}},
		{"FETCH 1:* (ENVELOPE)", func(t *target) (time.Duration, error) {
			return t.timeSelected(n, func(c *imapclient.Client) error { return fetchEnvelopes(c, n) })
		}},
		{fmt.Sprintf("FETCH %d bodies (BODY.PEEK[])", bodies), func(t *target) (time.Duration, error) {
			return t.timeSelected(n, func(c *imapclient.Client) error { return fetchBodies(c, n, n/2) })
		}},
	}
}

// timeSelect times SELECT INBOX on a logged-in session.
func (t *target) timeSelect(n int) (time.Duration, error) {
	c, err := login(t.addr, t.user, t.pass)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	d, err := c.Select("INBOX", nil).Wait()
	el := time.Since(start)
	if err != nil {
		return 0, err
	}
	if int(d.NumMessages) != n {
		return 0, fmt.Errorf("SELECT: %d messages, want %d", d.NumMessages, n)
	}
	return el, c.Logout().Wait()
}

// timeSelected times f on a session that has selected INBOX.
func (t *target) timeSelected(n int, f func(*imapclient.Client) error) (time.Duration, error) {
	c, err := login(t.addr, t.user, t.pass)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := f(c); err != nil {
		return 0, err
	}
	el := time.Since(start)
	return el, c.Logout().Wait()
}

// drain reads a FETCH's answers, reading every literal, and counts them.
func drain(cmd *imapclient.FetchCommand) (msgs int, bytes int64, err error) {
	for {
		m := cmd.Next()
		if m == nil {
			break
		}
		msgs++
		for {
			item := m.Next()
			if item == nil {
				break
			}
			if b, ok := item.(imapclient.FetchItemDataBodySection); ok && b.Literal != nil {
				k, err := io.Copy(io.Discard, b.Literal)
				bytes += k
				if err != nil {
					return msgs, bytes, err
				}
			}
		}
	}
	return msgs, bytes, cmd.Close()
}

func allUIDs() imap.UIDSet { return imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}} }
func allSeq() imap.SeqSet  { return imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}} }

func fetchFlags(c *imapclient.Client, n int) error {
	got, _, err := drain(c.Fetch(allUIDs(), &imap.FetchOptions{UID: true, Flags: true}))
	if err == nil && got != n {
		err = fmt.Errorf("UID FETCH 1:* (FLAGS): %d messages, want %d", got, n)
	}
	return err
}

func fetchEnvelopes(c *imapclient.Client, n int) error {
	got, _, err := drain(c.Fetch(allSeq(), &imap.FetchOptions{Envelope: true}))
	if err == nil && got != n {
		err = fmt.Errorf("FETCH 1:* (ENVELOPE): %d messages, want %d", got, n)
	}
	return err
}

// fetchBodies reads the bodies messages from sequence number from+1
// (wrapping around).
func fetchBodies(c *imapclient.Client, n, from int) error {
	first := uint32(from%(n-bodies+1) + 1)
	set := imap.SeqSet{imap.SeqRange{Start: first, Stop: first + bodies - 1}}
	got, bytes, err := drain(c.Fetch(set, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}))
	if err == nil && (got != bodies || bytes < bodies*1024) {
		err = fmt.Errorf("FETCH of %d bodies: %d messages, %d bytes", bodies, got, bytes)
	}
	return err
}

// concurrentLoop logs in sessions sessions (not timed), then each runs
// loops times SELECT, UID FETCH 1:* (FLAGS), FETCH 1:* (ENVELOPE) and the
// body fetch (from its own offset); it returns the loops done and the
// wall time from the start of all to the end of the last.
func (t *target) concurrentLoop(ctx context.Context, n, sessions, loops int) (int, time.Duration, error) {
	clients, err := loginMany(t.addr, t.user, t.pass, sessions)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	startGate := make(chan struct{})
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGate
			for l := 0; l < loops; l++ {
				if ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				d, err := c.Select("INBOX", nil).Wait()
				if err == nil && int(d.NumMessages) != n {
					err = fmt.Errorf("SELECT: %d messages", d.NumMessages)
				}
				if err == nil {
					err = fetchFlags(c, n)
				}
				if err == nil {
					err = fetchEnvelopes(c, n)
				}
				if err == nil {
					err = fetchBodies(c, n, (i*loops+l)*bodies*7)
				}
				if err != nil {
					errs <- fmt.Errorf("session %d: %w", i, err)
					return
				}
			}
		}()
	}
	start := time.Now()
	close(startGate)
	wg.Wait()
	wall := time.Since(start)
	close(errs)
	for err := range errs {
		return 0, 0, err
	}
	for _, c := range clients {
		_ = c.Logout().Wait()
	}
	return sessions * loops, wall, nil
}
