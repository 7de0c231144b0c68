// Command homing-load is the load generator behind `make bench`: it creates
// accounts on a Homing node through the admin API, sends messages to them
// over concurrent persistent SMTP sessions (RFC 5321 §3.3 mail
// transactions: MAIL, RCPT, DATA), waits until the node has stored them
// all (GET /api/v1/stats), and reports accepted and delivered messages per
// second and the DATA -> 250 latency. With --spawn it starts its own node
// on a fresh directory and loopback ports.
//
//	homing-load [--spawn PATH_TO_HOMING | --smtp ADDR --admin ADDR] --n 20000 --size 4096 --c 20
//	            --accounts 500 --domain example.test [--smtp-source] [--json] [--timeout 10m]
//	homing-load --spawn PATH_TO_HOMING --targets homing,postfix,sink[,cluster] --rounds 3 ...
//
// With --targets it runs the same load against each target in
// interleaved rounds — Homing, a homing dev cluster, a private Postfix
// instance it sets up (virtual Maildirs, its normal fsyncs) and
// smtp-sink, the protocol's ceiling — and prints the medians side by
// side with their ratios and Homing's p99 DATA->250 at half load.
//
// Exit status: 0 when the run is a valid measurement, 1 when it failed or
// not every accepted message was delivered in time, 2 on a usage error.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/homing-mail/homing/admin"
)

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// runMain parses args, runs, prints the report on stdout and progress on
// stderr, and returns the exit code.
func runMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "homing-load: %v\n(homing-load --help lists the flags)\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(cfg.Targets) > 0 {
		return runCompare(ctx, cfg, stdout, stderr)
	}
	rep, err := run(ctx, cfg, stderr)
	if rep != nil {
		if cfg.JSON {
			rep.writeJSON(stdout)
		} else {
			rep.writeText(stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "homing-load: %v\n", err)
		return 1
	}
	if !rep.OK() {
		fmt.Fprintln(stderr, "homing-load: not a valid measurement: nothing accepted, or not all accepted messages delivered in time")
		return 1
	}
	return 0
}

// runCompare runs a comparison (--targets), prints it and returns the
// exit code: 1 when a round did not measure.
func runCompare(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	c := compare(ctx, cfg, stderr)
	if cfg.JSON {
		c.writeJSON(stdout)
	} else {
		c.writeText(stdout)
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "homing-load: interrupted: %v\n", ctx.Err())
		return 1
	}
	if !c.OK() {
		fmt.Fprintln(stderr, "homing-load: not every round is a valid measurement (see the result column)")
		return 1
	}
	return 0
}

// run does one benchmark and returns its report; progress lines go to
// progress. A report is returned whenever sending took place, even with an
// error.
func run(ctx context.Context, cfg config, progress io.Writer) (rep *report, err error) {
	logf := func(format string, a ...any) { fmt.Fprintf(progress, "homing-load: "+format+"\n", a...) }
	rep = &report{Machine: thisMachine(), Params: params{N: cfg.N, Size: cfg.Size, C: cfg.sessions(), Accounts: cfg.Accounts, Domain: cfg.Domain}}

	smtpAddr, adminAddr, token := cfg.SMTP, cfg.Admin, cfg.Token
	rep.Params.Target = "smtp " + smtpAddr
	pid := 0 // the spawned node's process (one node)
	if cfg.Spawn != "" {
		rep.Params.Target = "spawned " + cfg.Spawn
		logf("starting %s", cfg.Spawn)
		ready := nodeReady
		if cfg.Cluster {
			ready = clusterReady
		}
		node, err := spawnNode(ctx, cfg, ready)
		if err != nil {
			return nil, err
		}
		logf("node ready: smtp %s, admin %s, dir %s", node.SMTP, node.Admin, node.Dir)
		defer func() {
			if stopErr := node.Stop(cfg.StopTimeout, cfg.Keep); stopErr != nil && rep != nil {
				rep.NodeStop = stopErr.Error()
			}
			if cfg.Keep && rep != nil {
				rep.NodeDir = node.Dir
			}
		}()
		smtpAddr, adminAddr, token = node.SMTP, node.Admin, ""
		if !cfg.Cluster {
			pid = node.cmd.Process.Pid
		}
	}
	client := newAdminClient(adminAddr, token)
	defer client.HTTP.CloseIdleConnections()

	gen, rcpts, err := accountList(cfg)
	if err != nil {
		return nil, err
	}

	logf("creating %d accounts", cfg.Accounts)
	pw := make([]byte, 16)
	rand.Read(pw) // crypto/rand.Read never fails (Go 1.24+)
	hash := argon2idPHC(base64.RawURLEncoding.EncodeToString(pw))
	t0 := time.Now()
	rep.AccountsCreated, err = createAccounts(ctx, client, rcpts, hash, cfg.sessions())
	rep.AccountsSec = time.Since(t0).Seconds()
	if err != nil {
		return nil, err
	}
	base, err := client.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the node's stats: %w", err)
	}

	logf("sending %d messages of %d bytes over %d sessions", cfg.N, cfg.Size, cfg.sessions())
	s := &sender{addr: smtpAddr, helo: "homing-load.localhost", from: cfg.From, gen: gen, rcpts: rcpts, n: cfg.N, sessions: cfg.sessions(), rate: cfg.Rate}
	cpu := startCPUWindow()
	res := s.run(ctx)
	rep.Accepted, rep.TempFailures, rep.PermFailures, rep.IOErrors, rep.Unsent = res.Accepted, res.Temp, res.Perm, res.IO, res.Unsent
	rep.AcceptWindowSec = res.Window().Seconds()
	rep.AcceptedPerSec = rate(res.Accepted, res.Window())
	lat := summarize(res.Latencies)
	rep.Data250P50Ms, rep.Data250P99Ms, rep.Data250MaxMs = ms(lat.P50), ms(lat.P99), ms(lat.Max)
	env := summarize(res.Envelopes)
	rep.EnvelopeP50Ms, rep.EnvelopeP99Ms = ms(env.P50), ms(env.P99)
	rep.ErrorSamples = res.Samples

	logf("accepted %d; waiting up to %s for the deliveries", res.Accepted, cfg.Timeout)
	d := waitDelivered(ctx, client, base.DeliveredLocal, res.Accepted, pollInterval, cfg.Timeout)
	rep.Delivered = d.Delivered
	rep.DeliveryComplete = d.Complete()
	if d.Complete() && !res.First.IsZero() {
		rep.DeliverWindowSec = d.Reached.Sub(res.First).Seconds()
		rep.DeliveredPerSec = rate(d.Delivered, d.Reached.Sub(res.First))
	}
	if !d.Complete() && d.Err != nil {
		rep.DeliveryError = d.Err.Error()
	}
	if m, ok := cpu.use(); ok {
		rep.MachineCPU = &m
	}
	rep.StoreP50Ms, rep.StoreP99Ms = secondsToMs(d.Last.StoreLatencyP50), secondsToMs(d.Last.StoreLatencyP99)
	rep.Bounced = d.Last.Bounced - base.Bounced
	rep.Deferred = d.Last.Deferred - base.Deferred
	if pid != 0 {
		rep.Node = measureNode(ctx, cfg, client, pid, d.Delivered, logf)
	}

	if cfg.SMTPSource && ctx.Err() == nil {
		logf("running smtp-source")
		src := runSMTPSource(ctx, cfg, smtpAddr)
		if src.Skipped == "" {
			start := time.Now().Add(-time.Duration(src.WallSec * float64(time.Second)))
			already := base.DeliveredLocal + d.Delivered
			sd := waitDelivered(ctx, client, already, src.Completed, pollInterval, cfg.Timeout)
			src.Delivered = sd.Delivered
			src.DeliveryComplete = sd.Complete()
			src.Bounced = sd.Last.Bounced - d.Last.Bounced
			src.Deferred = sd.Last.Deferred - d.Last.Deferred
			if sd.Complete() {
				src.DeliveredPerSec = rate(sd.Delivered, sd.Reached.Sub(start))
			}
		}
		rep.SMTPSource = &src
	}
	if ctx.Err() != nil {
		return rep, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return rep, nil
}

// measureNode samples the spawned node's process after the deliveries,
// and with cfg.Idle its CPU once it is idle; nil where /proc cannot tell.
func measureNode(ctx context.Context, cfg config, client *admin.Client, pid int, delivered int64, logf func(string, ...any)) *nodeProcess {
	s, err := readProc(pid)
	if err != nil {
		logf("the node's process: %v", err)
		return nil
	}
	n := &nodeProcess{RSSMB: mb(s.RSSKB), PeakRSSMB: mb(s.PeakRSSKB), AnonMB: mb(s.AnonKB), FileMB: mb(s.FileKB),
		CPUSec: float64(s.CPUTicks) / clockTicks}
	if delivered > 0 {
		n.CPUPerMsgMs = 1000 * n.CPUSec / float64(delivered)
	}
	if cfg.Idle > 0 && ctx.Err() == nil {
		logf("waiting for every partition to be idle, then measuring the node's CPU over %s", cfg.Idle)
		share, end, err := measureIdle(ctx, client, pid, cfg.Idle, cfg.IdleWait)
		if err != nil {
			n.IdleError = err.Error()
		} else {
			n.IdlePercent, n.IdleSec = 100*share, cfg.Idle.Seconds()
			n.IdleRSSMB, n.IdleAnonMB = mb(end.RSSKB), mb(end.AnonKB)
		}
	}
	return n
}

// newAdminClient is an admin client with a transport of its own, so that
// its connections can be closed at the end.
func newAdminClient(addr, token string) *admin.Client {
	c := admin.NewClient(addr, token)
	c.HTTP = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: time.Minute}
	return c
}

// nodeReady is the readiness probe of a spawned node: GET
// /api/v1/settings answers.
func nodeReady(ctx context.Context, adminAddr string) error {
	c := newAdminClient(adminAddr, "")
	defer c.HTTP.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := c.Settings(ctx)
	return err
}

// clusterReady is the readiness probe of a spawned cluster: its frontend
// answers and every partition has an owner.
func clusterReady(ctx context.Context, adminAddr string) error {
	if err := nodeReady(ctx, adminAddr); err != nil {
		return err
	}
	c := newAdminClient(adminAddr, "")
	defer c.HTTP.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cl, err := c.Cluster(ctx)
	if err != nil {
		return err
	}
	if len(cl.Partitions) == 0 {
		return errors.New("no partitions yet")
	}
	for _, p := range cl.Partitions {
		if p.Owner == "" {
			return fmt.Errorf("partition %d has no owner yet", p.ID)
		}
	}
	return nil
}
