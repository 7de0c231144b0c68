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
	if r := rate(res.Accepted, res.Window()); r > 220 {
		t.Errorf("accepted at %.1f/s, paced at 200/s", r)
	}
}

// A canceled paced run stops waiting: the rest is unsent.
func TestSenderPacingCanceled(t *testing.T) {
	mx := fakemx.Start(t)
	gen, err := newGenerator(1000, "bench@example.test", "example.test", 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s := &sender{addr: mx.Addr, helo: "t.localhost", from: "bench@example.test", gen: gen,
		rcpts: []string{gen.account(0)}, n: 1000, sessions: 2, rate: 20}
	res := s.run(ctx)
	if res.Accepted < 1 || res.Accepted > 4 || res.Unsent != 1000-res.Accepted {
		t.Fatalf("accepted %d, unsent %d", res.Accepted, res.Unsent)
	}
}
