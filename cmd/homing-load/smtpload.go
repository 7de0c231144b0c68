package main

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// maxErrorSamples bounds the distinct error texts a run keeps for its
// report.
const maxErrorSamples = 5

// sendResult is what the SMTP phase measured.
type sendResult struct {
	Accepted int64 // 250 to the end of DATA
	Temp     int64 // 4xx replies (MAIL, RCPT, DATA or the final dot)
	Perm     int64 // 5xx replies
	IO       int64 // connection failures; the message was not retried
	Unsent   int64 // not attempted because the run was canceled

	// Latencies are end-of-data "." -> 250, one per accepted message.
	Latencies []time.Duration
	// Envelopes are MAIL sent -> 354 to DATA read (three round trips:
	// MAIL, RCPT, DATA), one per accepted message.
	Envelopes []time.Duration
	// First is when the first MAIL was sent, Last when the last 250 to
	// DATA arrived.
	First, Last time.Time
	Samples     []string // a few distinct error texts
}

// Window is the time from the first MAIL to the last 250.
func (r *sendResult) Window() time.Duration {
	if r.First.IsZero() || r.Last.IsZero() {
		return 0
	}
	return r.Last.Sub(r.First)
}

// sender runs the SMTP phase: sessions persistent connections (EHLO once,
// then MAIL/RCPT/DATA repeatedly), n messages in all, message i to
// rcpts[i % len(rcpts)]. A failed message is counted, not retried; a
// broken connection is replaced for the next message.
type sender struct {
	addr     string
	helo     string
	from     string
	gen      *generator
	rcpts    []string
	n        int
	sessions int
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	// rate, when positive, paces the load: message i is not sent
	// before i/rate seconds after the start (an open-loop load, as
	// from many independent clients).
	rate float64

	start time.Time // when run began

	next atomic.Int64 // index of the next message to send
	mu   sync.Mutex
	res  sendResult
}

// run sends everything and returns the merged result.
func (s *sender) run(ctx context.Context) sendResult {
	if s.dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		s.dial = d.DialContext
	}
	s.res.Latencies = make([]time.Duration, 0, s.n)
	s.res.Envelopes = make([]time.Duration, 0, s.n)
	s.start = time.Now()
	var wg sync.WaitGroup
	for range s.sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.session(ctx)
		}()
	}
	wg.Wait()
	return s.res
}

// sessionStats is one session's tally, merged at its end so that the hot
// path takes no lock.
type sessionStats struct {
	accepted, temp, perm, io, unsent int64
	lat, env                         []time.Duration
	first, last                      time.Time
	samples                          []string
}

func (s *sender) session(ctx context.Context) {
	var st sessionStats
	var c *smtp.Client
	defer func() {
		if c != nil {
			c.Quit()
			c.Close()
		}
		s.merge(&st)
	}()
	for {
		i := int(s.next.Add(1) - 1)
		if i >= s.n {
			return
		}
		if ctx.Err() != nil || !s.pace(ctx, i) {
			st.unsent++
			continue
		}
		if c == nil {
			var err error
			if c, err = s.connect(ctx); err != nil {
				st.fail(err)
				c = nil
				continue
			}
		}
		ok, broken := s.sendOne(c, i, &st)
		if ok || !broken {
			continue
		}
		c.Close()
		c = nil
	}
}

// pace waits until message i is due; false if ctx ended first.
func (s *sender) pace(ctx context.Context, i int) bool {
	if s.rate <= 0 {
		return true
	}
	due := s.start.Add(time.Duration(float64(i) / s.rate * float64(time.Second)))
	wait := time.Until(due)
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// connect dials and says EHLO.
func (s *sender) connect(ctx context.Context) (*smtp.Client, error) {
	conn, err := s.dial(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = time.Minute
	c.SubmissionTimeout = 2 * time.Minute
	// Hello reads the greeting and says EHLO now, outside the timed part.
	if err := c.Hello(s.helo); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// sendOne sends message i. It reports whether the message was accepted
// and whether the connection is unusable afterwards.
func (s *sender) sendOne(c *smtp.Client, i int, st *sessionStats) (ok, broken bool) {
	rcpt := s.rcpts[i%len(s.rcpts)]
	msg := s.gen.message(i, rcpt, time.Now())
	if st.first.IsZero() {
		st.first = time.Now()
	}
	envStart := time.Now()
	err := c.Mail(s.from, &smtp.MailOptions{Size: int64(len(msg))})
	if err == nil {
		err = c.Rcpt(rcpt, nil)
	}
	var w *smtp.DataCommand
	if err == nil {
		w, err = c.Data()
	}
	env := time.Since(envStart)
	if err == nil {
		_, err = w.Write(msg)
	}
	var lat time.Duration
	if err == nil {
		// The body is written; Close flushes its tail and the final
		// "." and reads the reply: that is the DATA -> 250 latency.
		start := time.Now()
		_, err = w.CloseWithResponse()
		end := time.Now()
		lat = end.Sub(start)
		if err == nil {
			st.accepted++
			st.lat = append(st.lat, lat)
			st.env = append(st.env, env)
			st.last = end
			return true, false
		}
	}
	st.fail(err)
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return false, true
	}
	// A refusal leaves the connection usable; RSET ends the transaction
	// (RFC 5321 §4.1.1.5). go-smtp's client says EHLO again after RSET,
	// so a session that saw an error greets more than once.
	return false, c.Reset() != nil
}

// fail counts an error as 4xx, 5xx or a connection failure.
func (st *sessionStats) fail(err error) {
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se) && se.Code/100 == 4:
		st.temp++
	case errors.As(err, &se) && se.Code/100 == 5:
		st.perm++
	default:
		st.io++
	}
	if len(st.samples) < maxErrorSamples {
		st.samples = append(st.samples, err.Error())
	}
}

func (s *sender) merge(st *sessionStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.res
	r.Accepted += st.accepted
	r.Temp += st.temp
	r.Perm += st.perm
	r.IO += st.io
	r.Unsent += st.unsent
	r.Latencies = append(r.Latencies, st.lat...)
	r.Envelopes = append(r.Envelopes, st.env...)
	if !st.first.IsZero() && (r.First.IsZero() || st.first.Before(r.First)) {
		r.First = st.first
	}
	if st.last.After(r.Last) {
		r.Last = st.last
	}
	for _, m := range st.samples {
		if len(r.Samples) >= maxErrorSamples {
			break
		}
		dup := false
		for _, have := range r.Samples {
			dup = dup || have == m
		}
		if !dup {
			r.Samples = append(r.Samples, m)
		}
	}
}
