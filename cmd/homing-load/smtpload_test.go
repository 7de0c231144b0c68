package main

import (
	"context"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/fakemx"
)

// A paced run sends message i no earlier than i/rate after the start: 21
// messages at 200/s take at least 100 ms however fast the server is.
func TestSenderPacesTheLoad(t *testing.T) {
	mx := fakemx.Start(t)
	gen, err := newGenerator(1000, "bench@example.test", "example.test", 3)
	if err != nil {
		t.Fatal(err)
	}
	s := &sender{addr: mx.Addr, helo: "t.localhost", from: "bench@example.test", gen: gen,
		rcpts: []string{gen.account(0), gen.account(1), gen.account(2)}, n: 21, sessions: 4, rate: 200}
	res := s.run(context.Background())
	if res.Accepted != 21 {
		t.Fatalf("accepted %d: %+v", res.Accepted, res.Samples)
	}
	if w := res.Last.Sub(s.start); w < 100*time.Millisecond {
		t.Errorf("21 messages at 200/s took %s, want >= 100ms", w)
	}
}

// A canceled paced run stops waiting: the rest is unsent, at once.
func TestSenderPacingCanceled(t *testing.T) {
	mx := fakemx.Start(t)
	gen, err := newGenerator(1000, "bench@example.test", "example.test", 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	s := &sender{addr: mx.Addr, helo: "t.localhost", from: "bench@example.test", gen: gen,
		rcpts: []string{gen.account(0)}, n: 1000, sessions: 2, rate: 20}
	res := s.run(ctx)
	// Due at 0, 50, ... 300 ms: at most 7 sent; the rest unsent.
	if res.Accepted > 7 || res.Accepted+res.IO+res.Unsent != 1000 || res.Unsent < 993 {
		t.Fatalf("accepted %d, io %d, unsent %d", res.Accepted, res.IO, res.Unsent)
	}
}

// The envelope time (MAIL sent -> 354 read) holds the RCPT round trip and
// DATA -> 250 does not: a server that waits 100 ms before answering RCPT
// makes every envelope at least 100 ms, one per accepted message.
func TestSenderTimesTheEnvelope(t *testing.T) {
	mx := fakemx.Start(t)
	const wait = 100 * time.Millisecond
	mx.Delay(fakemx.Rcpt, wait)
	gen, err := newGenerator(1000, "bench@example.test", "example.test", 2)
	if err != nil {
		t.Fatal(err)
	}
	s := &sender{addr: mx.Addr, helo: "t.localhost", from: "bench@example.test", gen: gen,
		rcpts: []string{gen.account(0), gen.account(1)}, n: 6, sessions: 2}
	res := s.run(context.Background())
	if res.Accepted != 6 || len(res.Envelopes) != 6 || len(res.Latencies) != 6 {
		t.Fatalf("accepted %d, %d envelope and %d DATA times: %+v", res.Accepted, len(res.Envelopes), len(res.Latencies), res.Samples)
	}
	for _, e := range res.Envelopes {
		if e < wait {
			t.Errorf("an envelope took %s with RCPT answered after %s", e, wait)
		}
	}
	if data := summarize(res.Latencies); data.Max >= wait {
		t.Errorf("longest DATA -> 250 %s: the RCPT delay is counted in it", data.Max)
	}
}
