package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/homing-mail/homing/actors/pb"
)

// Channel child processes. Each runs one actor system with one cluster
// channel (see TestMain for why never two in one process) and a counting
// resolver actor, and is driven over stdin/stdout, one line each way:
//
//	at start      -> "addr ADDRESS", or "starterr KIND TEXT" and exit
//	              (KIND: config, started, listen, other)
//	resolve ADDR MS -> "ok ACCOUNT" | "err TEXT": a pb.Resolve request to
//	              the resolver actor of the node whose channel is ADDR
//	resolvebig ADDR MS SIZE -> "ok LEN" | "err TEXT": the same with an
//	              address of SIZE bytes; LEN is the length of the answer
//	count         -> "count N": messages the resolver actor received
//	again         -> StartChannel once more on the same actor system:
//	              "starterr KIND TEXT" | "addr ADDRESS"
//	stop          -> "stopped MS" then "leaks none" | "leaks TEXT", exit 0
//	end of stdin  -> exit at once, without stopping anything
//
// The child is the race-enabled test binary: a data race in it makes it
// exit with status 66, which the parent's cleanup turns into a failure.
const (
	channelChildEnv   = "HOMING_CHANNEL_CHILD" // "node"
	childSecretEnv    = "HOMING_CHANNEL_SECRET"
	childInsecureEnv  = "HOMING_CHANNEL_INSECURE" // "1" = Insecure
	childBindEnv      = "HOMING_CHANNEL_BIND"     // default 127.0.0.1:0
	childAdvertiseEnv = "HOMING_CHANNEL_ADVERTISE"
	childClusterEnv   = "HOMING_CHANNEL_CLUSTER"

	// resolverName is the name of the child's resolver actor.
	resolverName = "resolver"
	// resolveAddress is the address the child asks peers to resolve.
	resolveAddress = "alice@example.test"
)

// countingResolver answers pb.Resolve with "resolved:" + the address and
// counts every message it gets except its own Started.
type countingResolver struct{ received *atomic.Int64 }

func (r countingResolver) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
	case *pb.Resolve:
		r.received.Add(1)
		ctx.Respond(&pb.ResolveResult{Account: "resolved:" + m.Address})
	default:
		r.received.Add(1)
	}
}

// startErrKind names the kind of a StartChannel error for the parent.
func startErrKind(err error) string {
	switch {
	case errors.Is(err, ErrChannelConfig):
		return "config"
	case errors.Is(err, ErrChannelStarted):
		return "started"
	case errors.Is(err, ErrChannelListen):
		return "listen"
	}
	return "other"
}

// runChannelChild is the child's main; it returns the exit status.
func runChannelChild() int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger.With("lib", "protoactor") }),
		actor.WithDeadLetterRequestLogging(false),
	)
	bind := os.Getenv(childBindEnv)
	if bind == "" {
		bind = "127.0.0.1:0"
	}
	cfg := ChannelConfig{
		BindAddr:      bind,
		AdvertiseAddr: os.Getenv(childAdvertiseEnv),
		Secret:        os.Getenv(childSecretEnv),
		Insecure:      os.Getenv(childInsecureEnv) == "1",
		ClusterName:   os.Getenv(childClusterEnv),
		Logger:        logger.With("component", "channel"),
	}
	out := bufio.NewWriter(os.Stdout)
	reply := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		_ = out.Flush()
	}
	ch, err := StartChannel(system, cfg)
	if err != nil {
		reply("starterr %s %s", startErrKind(err), oneLine(err.Error()))
		return 0
	}
	var received atomic.Int64
	if _, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return countingResolver{received: &received}
	}), resolverName); err != nil {
		reply("starterr other spawn: %s", oneLine(err.Error()))
		return 1
	}
	reply("addr %s", ch.Address())

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 3 && f[0] == "resolve":
			ms, _ := strconv.Atoi(f[2])
			res, err := system.Root.RequestFuture(actor.NewPID(f[1], resolverName),
				&pb.Resolve{Address: resolveAddress}, time.Duration(ms)*time.Millisecond).Result()
			switch r, ok := res.(*pb.ResolveResult); {
			case err != nil:
				reply("err %s", oneLine(err.Error()))
			case !ok:
				reply("err unexpected reply %T", res)
			default:
				reply("ok %s", r.Account)
			}
		case len(f) == 4 && f[0] == "resolvebig":
			ms, _ := strconv.Atoi(f[2])
			size, _ := strconv.Atoi(f[3])
			res, err := system.Root.RequestFuture(actor.NewPID(f[1], resolverName),
				&pb.Resolve{Address: strings.Repeat("x", size)}, time.Duration(ms)*time.Millisecond).Result()
			switch r, ok := res.(*pb.ResolveResult); {
			case err != nil:
				reply("err %s", oneLine(err.Error()))
			case !ok:
				reply("err unexpected reply %T", res)
			default:
				reply("ok %d", len(r.Account))
			}
		case len(f) == 1 && f[0] == "count":
			reply("count %d", received.Load())
		case len(f) == 1 && f[0] == "again":
			if again, err := StartChannel(system, cfg); err != nil {
				reply("starterr %s %s", startErrKind(err), oneLine(err.Error()))
			} else {
				reply("addr %s", again.Address())
			}
		case len(f) == 1 && f[0] == "stop":
			start := time.Now()
			ch.Stop()
			system.Shutdown()
			reply("stopped %d", time.Since(start).Milliseconds())
			if err := goleak.Find(); err != nil {
				reply("leaks %s", oneLine(err.Error()))
			} else {
				reply("leaks none")
			}
			return 0
		default:
			reply("err unknown command %q", in.Text())
		}
	}
	return 0
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// channelChild is the parent's handle on a child process.
type channelChild struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // the child's stdout lines; closed at EOF
	stderr *lockedBuffer
	// addr is the child's channel address ("" if it failed to start).
	addr string
	// startErr is the child's "starterr" line without the prefix.
	startErr string
	exited   bool
}

// lockedBuffer is a bytes.Buffer for a child's stderr, which exec copies
// from another goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// childReplyTimeout bounds every wait for a child's line. Requests that
// are meant to fail carry their own, shorter timeout.
const childReplyTimeout = 20 * time.Second

// launchChannelChild starts a child with env (KEY=VALUE) without waiting
// for it; awaitStart reads its first line. The child is ended and checked
// when the test ends: exit status 0 (so no data race) and no race report
// on stderr.
func launchChannelChild(t *testing.T, name string, env ...string) *channelChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// The race runtime sleeps 1 s at exit unless told not to.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(append(os.Environ(), channelChildEnv+"=node", "GORACE="+gorace), env...)
	c := &channelChild{t: t, name: name, cmd: cmd, lines: make(chan string, 16), stderr: &lockedBuffer{}}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(c.finish)
	return c
}

// awaitStart reads the child's first line into addr or startErr.
func (c *channelChild) awaitStart() {
	c.t.Helper()
	first := c.read()
	switch {
	case strings.HasPrefix(first, "addr "):
		c.addr = strings.TrimPrefix(first, "addr ")
	case strings.HasPrefix(first, "starterr "):
		c.startErr = strings.TrimPrefix(first, "starterr ")
	default:
		c.t.Fatalf("%s: unexpected first line %q", c.name, first)
	}
}

// requireStarted fails the test if the child did not start its channel.
func (c *channelChild) requireStarted() {
	c.t.Helper()
	if c.addr == "" {
		c.t.Fatalf("%s did not start: %s", c.name, c.startErr)
	}
}

// spawnChannelChild is launchChannelChild then awaitStart.
func spawnChannelChild(t *testing.T, name string, env ...string) *channelChild {
	t.Helper()
	c := launchChannelChild(t, name, env...)
	c.awaitStart()
	return c
}

// startChannelChild is spawnChannelChild for a child that must start.
func startChannelChild(t *testing.T, name string, env ...string) *channelChild {
	t.Helper()
	c := spawnChannelChild(t, name, env...)
	c.requireStarted()
	return c
}

// startChannelChildren starts one child per name (env[i] for names[i])
// at once and waits until all have started.
func startChannelChildren(t *testing.T, names []string, env ...[]string) []*channelChild {
	t.Helper()
	cs := make([]*channelChild, len(names))
	for i, n := range names {
		cs[i] = launchChannelChild(t, n, env[i]...)
	}
	for _, c := range cs {
		c.awaitStart()
		c.requireStarted()
	}
	return cs
}

// read returns the child's next line; it fails the test at EOF or after
// childReplyTimeout.
func (c *channelChild) read() string {
	c.t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("%s: output ended", c.name)
		}
		return line
	case <-time.After(childReplyTimeout):
		c.t.Fatalf("%s: no answer within %v", c.name, childReplyTimeout)
		return ""
	}
}

// send writes one command line.
func (c *channelChild) send(format string, args ...any) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.stdin, format+"\n", args...); err != nil {
		c.t.Fatalf("%s: send: %v", c.name, err)
	}
}

// sendResolve asks the child to send a pb.Resolve to the resolver at
// addr, with the given request timeout; recvResolve reads the answer.
func (c *channelChild) sendResolve(addr string, timeout time.Duration) {
	c.t.Helper()
	c.send("resolve %s %d", addr, timeout.Milliseconds())
}

// recvResolve returns the account and nil, or the child's error text.
func (c *channelChild) recvResolve() (string, error) {
	c.t.Helper()
	line := c.read()
	if acc, ok := strings.CutPrefix(line, "ok "); ok {
		return acc, nil
	}
	if text, ok := strings.CutPrefix(line, "err "); ok {
		return "", errors.New(text)
	}
	c.t.Fatalf("%s: unexpected answer %q", c.name, line)
	return "", nil
}

// resolve is sendResolve then recvResolve.
func (c *channelChild) resolve(addr string, timeout time.Duration) (string, error) {
	c.t.Helper()
	c.sendResolve(addr, timeout)
	return c.recvResolve()
}

// count returns how many messages the child's resolver received.
func (c *channelChild) count() int {
	c.t.Helper()
	c.send("count")
	line := c.read()
	n, err := strconv.Atoi(strings.TrimPrefix(line, "count "))
	if err != nil {
		c.t.Fatalf("%s: unexpected answer %q", c.name, line)
	}
	return n
}

// stop stops the child's channel and actor system gracefully and returns
// how long Stop took and the child's goroutine leak report ("none").
func (c *channelChild) stop() (time.Duration, string) {
	c.t.Helper()
	c.send("stop")
	ms, err := strconv.Atoi(strings.TrimPrefix(c.read(), "stopped "))
	if err != nil {
		c.t.Fatalf("%s: bad stop answer", c.name)
	}
	leaks := strings.TrimPrefix(c.read(), "leaks ")
	c.wait()
	return time.Duration(ms) * time.Millisecond, leaks
}

// exit closes the child's stdin, so that it exits without stopping, and
// waits for it.
func (c *channelChild) exit() {
	c.t.Helper()
	c.wait()
}

// wait closes stdin, waits (killing the child after childReplyTimeout)
// and checks that the child exited with status 0 and reported no race.
func (c *channelChild) wait() {
	c.t.Helper()
	if c.exited {
		return
	}
	c.exited = true
	_ = c.stdin.Close()
	timer := time.AfterFunc(childReplyTimeout, func() { _ = c.cmd.Process.Kill() })
	for range c.lines { // drain to EOF, so that Wait may close the pipe
	}
	err := c.cmd.Wait()
	timer.Stop()
	stderr := c.stderr.String()
	if err != nil || strings.Contains(stderr, "DATA RACE") {
		c.t.Errorf("%s exited with %v (status 66 = data race); stderr:\n%s", c.name, err, stderr)
	}
}

// finish is the cleanup: end the child and show its log if the test failed.
func (c *channelChild) finish() {
	c.wait()
	if c.t.Failed() {
		c.t.Logf("%s stderr:\n%s", c.name, c.stderr.String())
	}
}
