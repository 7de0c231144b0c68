// Command homing-imap-bench is the benchmark behind `make bench-imap`: it
// puts the same mailbox (--sizes messages, 10,000 and 100,000 by default)
// into a Homing node it spawns and into a Dovecot it starts on loopback
// with a configuration of its own (Maildir, plain passwords from a
// passwd-file, no other listener), and times, side by side over --rounds
// rounds, what a mail client does with a big mailbox: SELECT,
// UID FETCH 1:* (FLAGS), FETCH 1:* (ENVELOPE), FETCH of 100 whole bodies,
// and --sessions concurrent sessions doing that loop. It prints the median
// of each, both products' numbers and their ratio.
//
//	homing-imap-bench --homing bin/homing [--dovecot /usr/sbin/dovecot] [--sizes 10000,100000]
//	                  [--rounds 5] [--conc-rounds 3] [--sessions 50] [--loops 1] [--append-sessions 16]
//	                  [--pprof FILE] [--keep]
//
// Homing's mailbox is filled with APPEND over --append-sessions parallel
// sessions (the way a client uploads mail; each APPEND is durable before
// its OK); Dovecot's Maildir is written directly as Dovecot's own delivery
// names its files (S= and W= sizes in the name), and Dovecot builds its
// index on the first SELECT, which is reported apart. Before the timed
// rounds every operation runs once on both, so the caches of both are
// warm. Logins are not timed. With --pprof the spawned node serves Go's
// profiler and a CPU profile of the concurrent loop on the largest mailbox
// is written to FILE (go tool pprof FILE).
//
// Only loopback addresses are used.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	Homing, Dovecot string
	Sizes           []int
	Rounds          int
	ConcRounds      int
	Sessions        int
	Loops           int
	AppendSessions  int
	Pprof           string
	PprofSeconds    int
	Keep            bool
	// HomingData, when set, keeps Homing's filled data directory of each
	// size under it (homing-N) and uses it again in a later run instead
	// of filling anew: for working on the server, not for the README's
	// numbers (which fill a fresh node each time).
	HomingData string
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "homing-imap-bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "homing-imap-bench: %v\n", err)
		return 1
	}
	return 0
}

func parseArgs(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("homing-imap-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Homing, "homing", "bin/homing", "the homing binary to spawn")
	fs.StringVar(&cfg.Dovecot, "dovecot", "/usr/sbin/dovecot", "the dovecot binary (Debian's dovecot-imapd)")
	sizes := fs.String("sizes", "10000,100000", "mailbox sizes, comma-separated")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "timed rounds of each single-session operation (the median is reported)")
	fs.IntVar(&cfg.ConcRounds, "conc-rounds", 3, "timed rounds of the concurrent loop")
	fs.IntVar(&cfg.Sessions, "sessions", 50, "concurrent sessions of the loop")
	fs.IntVar(&cfg.Loops, "loops", 1, "loops per concurrent session and round")
	fs.IntVar(&cfg.AppendSessions, "append-sessions", 16, "parallel APPEND sessions filling Homing's mailbox")
	fs.StringVar(&cfg.Pprof, "pprof", "", "write a CPU profile of Homing during the concurrent loop on the largest mailbox to this file")
	fs.IntVar(&cfg.PprofSeconds, "pprof-seconds", 20, "how long the profile samples (from the start of the concurrent loop)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary directories")
	fs.StringVar(&cfg.HomingData, "homing-data", "", "keep Homing's filled data directories here (homing-N) and use them again in later runs instead of filling anew (for development; the fill time is then not measured)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 100 {
			return cfg, fmt.Errorf("--sizes: %q is not a number of at least 100", s)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	if cfg.Rounds < 1 || cfg.ConcRounds < 1 || cfg.Sessions < 1 || cfg.Loops < 1 || cfg.AppendSessions < 1 {
		return cfg, errors.New("--rounds, --sessions, --loops and --append-sessions must be at least 1")
	}
	return cfg, nil
}

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s homing-imap-bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	if _, err := os.Stat(cfg.Dovecot); err != nil {
		return fmt.Errorf("dovecot is needed (apt-get install dovecot-imapd): %v", err)
	}
	rep := &report{Machine: thisMachine(), Cfg: cfg}
	largest := 0
	for _, n := range cfg.Sizes {
		largest = max(largest, n)
	}
	for _, n := range cfg.Sizes {
		if err := benchSize(ctx, cfg, n, n == largest, rep, logf); err != nil {
			rep.write(stdout) // what was measured
			return err
		}
		rep.write(stdout)
	}
	return nil
}

// benchSize fills both products with n messages and runs the rounds.
func benchSize(ctx context.Context, cfg config, n int, profile bool, rep *report, logf func(string, ...any)) error {
	msgs := generate(n)
	logf("%d messages, %d MiB", n, totalSize(msgs)>>20)

	data, filled := "", false
	if cfg.HomingData != "" {
		data = filepath.Join(cfg.HomingData, fmt.Sprintf("homing-%d", n))
		_, err := os.Stat(filepath.Join(data, "filled"))
		filled = err == nil
	}
	h, err := startHoming(ctx, cfg, data, !filled, profile && cfg.Pprof != "", logf)
	if err != nil {
		return err
	}
	defer h.stop(cfg.Keep)
	var fill time.Duration
	if filled {
		logf("Homing: using the %d messages filled earlier in %s", n, data)
	} else {
		start := time.Now()
		if err := h.fill(ctx, msgs, cfg.AppendSessions, logf); err != nil {
			return fmt.Errorf("filling Homing: %w\n%s", err, h.logTail())
		}
		fill = time.Since(start)
		logf("Homing: %d APPENDs over %d sessions in %v (%.0f/s)", n, cfg.AppendSessions, fill.Round(time.Millisecond), float64(n)/fill.Seconds())
		if data != "" {
			if err := os.WriteFile(filepath.Join(data, "filled"), nil, 0o644); err != nil {
				return err
			}
		}
	}

	d, err := startDovecot(cfg, msgs, logf)
	if err != nil {
		return err
	}
	defer d.stop(cfg.Keep)

	size := &sizeReport{N: n, HomingFill: fill, HomingFillSessions: cfg.AppendSessions, DovecotWrite: d.written}
	rep.Sizes = append(rep.Sizes, size)
	targets := []*target{
		{name: "Homing", addr: h.imap, user: benchUser, pass: benchPass},
		{name: "Dovecot", addr: d.addr, user: dovecotUser, pass: dovecotPass},
	}
	// Dovecot indexes the Maildir on its first SELECT.
	first, err := targets[1].timeSelect(n)
	if err != nil {
		return fmt.Errorf("the first SELECT of Dovecot: %w\n%s", err, d.logTail())
	}
	size.DovecotFirstSelect = first
	logf("Dovecot: first SELECT (building its index) %v", first.Round(time.Millisecond))

	ops := singleOps(n)
	logf("warming up: every operation once on both")
	for _, t := range targets {
		for _, op := range ops {
			if _, err := op.run(t); err != nil {
				return fmt.Errorf("%s %s: %w", t.name, op.name, err)
			}
		}
	}
	for _, op := range ops {
		res := &opResult{Op: op.name}
		size.Ops = append(size.Ops, res)
		for r := 0; r < cfg.Rounds; r++ {
			for i := range targets {
				t := targets[(i+r)%2] // alternate who goes first
				d, err := op.run(t)
				if err != nil {
					return fmt.Errorf("%s %s: %w", t.name, op.name, err)
				}
				res.add(t.name, d)
			}
		}
		logf("%d messages, %s: Homing %v, Dovecot %v", n, op.name, res.median("Homing").Round(time.Microsecond), res.median("Dovecot").Round(time.Microsecond))
	}

	conc := &concResult{Sessions: cfg.Sessions, Loops: cfg.Loops}
	size.Concurrent = conc
	for r := 0; r < cfg.ConcRounds; r++ {
		for i := range targets {
			t := targets[(i+r)%2]
			var stopProfile func() error
			if profile && cfg.Pprof != "" && t.name == "Homing" && r == 0 {
				stopProfile = h.startProfile(cfg.Pprof, cfg.PprofSeconds)
			}
			loops, wall, err := t.concurrentLoop(ctx, n, cfg.Sessions, cfg.Loops)
			if stopProfile != nil {
				if perr := stopProfile(); perr != nil {
					logf("profile: %v", perr)
				} else {
					logf("CPU profile of Homing's concurrent loop written to %s", cfg.Pprof)
				}
			}
			if err != nil {
				// Reported, and the run goes on: the other product's
				// number is still worth having.
				tail := d.logTail()
				if t.name == "Homing" {
					tail = h.logTail()
				}
				logf("%s, %d concurrent sessions FAILED: %v\nthe end of its log:\n%s", t.name, cfg.Sessions, err, tail)
				conc.failed(t.name, err)
				continue
			}
			conc.add(t.name, float64(loops)/wall.Seconds())
			logf("%d messages, %d sessions x %d loops: %s %v (%.2f loops/s)", n, cfg.Sessions, cfg.Loops, t.name, wall.Round(time.Millisecond), float64(loops)/wall.Seconds())
		}
	}
	return nil
}
