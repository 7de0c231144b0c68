package main

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestSinkArgs(t *testing.T) {
	if got := sinkArgs("127.0.0.1:2626", 20, true); !slices.Equal(got, []string{"-u", "nobody", "-m", "256", "127.0.0.1:2626", "1000"}) {
		t.Errorf("as root: %q", got)
	}
	if got := sinkArgs("127.0.0.1:2626", 2000, false); !slices.Equal(got, []string{"-m", "2010", "127.0.0.1:2626", "2000"}) {
		t.Errorf("2000 sessions: %q", got)
	}
}

// The real smtp-sink takes the load client's messages and stops on
// Stop.
func TestSinkAcceptsTheLoad(t *testing.T) {
	ctx := context.Background()
	cfg, err := parseArgs([]string{"--targets", "sink", "--n", "50", "--c", "5", "--accounts", "3", "--size", "3000"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	gen, rcpts, err := accountList(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startSink(ctx, cfg.sessions(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var r roundResult
	res := sendTo(ctx, cfg, s.Addr, gen, rcpts, &r)
	if err := s.Stop(); err != nil {
		t.Error(err)
	}
	if res.Accepted != 50 || r.Failures != 0 || r.Error != "" || r.AcceptedPerSec <= 0 {
		t.Fatalf("accepted %d, %+v", res.Accepted, r)
	}
	select {
	case <-s.exited:
	default:
		t.Error("smtp-sink still running after Stop")
	}
	if err := greets(ctx, s.Addr); err == nil {
		t.Error("something still answers on the sink's port")
	}
}
