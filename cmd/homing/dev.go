package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/homing-mail/homing/admin"
)

// devNode is one process of `homing dev`.
type devNode struct {
	name, role               string
	smtp, admin, gossip, chn string
	imap, pop3               string
	cmd                      *exec.Cmd
	done                     chan struct{} // closed when the process has exited
	err                      error         // its exit status, once done is closed
}

// devSettings are what every node of `homing dev` is started with.
type devSettings struct {
	dir, domain, seed, filter string
	partitions, backendNice   int
	extra                     []string // after --: passed to every node
}

// serveArgs is the command line of node n's `homing serve`.
func (n *devNode) serveArgs(o devSettings) []string {
	args := []string{"serve", "--name", n.name, "--roles", n.role,
		"--smtp", n.smtp, "--admin", n.admin, "--gossip", n.gossip, "--cluster-addr", n.chn,
		// Every node serves IMAP and POP3 for every account (its
		// sessions work at the account's owner).
		"--imap", n.imap, "--pop3", n.pop3,
		"--data", filepath.Join(o.dir, n.name), "--account-store", filepath.Join(o.dir, "accounts"),
		"--partitions", strconv.Itoa(o.partitions), "--domains", o.domain, "--gossip-fast",
		"--hostname", n.name + ".dev.test"}
	args = append(args, o.extra...)
	if n.gossip != o.seed {
		args = append(args, "--join", o.seed)
	}
	// The reference layout: frontends process queues for others;
	// backends have no Internet access and forward to them.
	if n.role == "frontend" {
		args = append(args, "--queue-mode", "locally-for-others")
	} else {
		args = append(args, "--queue-mode", "locally", "--forward-to", "*")
	}
	if o.filter != "" {
		args = append(args, "--filter", "example="+o.filter)
	}
	if n.role == "backend" && o.backendNice != 0 {
		args = append(args, "--nice", strconv.Itoa(o.backendNice))
	}
	return args
}

// devBackendNice is the CPU priority `homing dev` gives its backends. All
// of a dev cluster's nodes share the machine's cores, and every round trip
// of an SMTP session runs on the frontend, while the deliveries to the
// backends run beside the sessions, not in their way: at one priority the
// kernel shares the CPU out among the threads of all three processes, and
// the frontend's sessions wait for it (MAIL->354 twice the single node's).
// Measured on the 2-core machine, `bin/homing-load --spawn B [--cluster]
// --n 30000 --c 20 --size 4096 --accounts 500`, 3 interleaved rounds
// (median): one node 2,339 msg/s; the cluster with backends at nice 10
// 2,093 (0.89x), MAIL->354 p50 2.4 ms as on the one node; at nice 0 1,720
// (0.74x), MAIL->354 p50 4.4 ms. What it costs: received->stored p99
// 152-163 ms against 33-35 ms at nice 0 (the deliveries wait in the
// frontend's queue while the sessions run). At nice 19 that p99 was 362
// ms. The contention cost CPU too: at nice 0 the nodes took 0.99 ms of
// CPU per message against 0.665 for one node; at nice 10, in profiles of
// one period, 0.615 against 0.597.
const devBackendNice = 10

// runDev starts a local cluster of real processes on loopback: by default
// one frontend and two backends sharing one account store (a dynamic
// cluster), prints their addresses, and stops them all on Ctrl-C.
func runDev(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("homing dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	frontends := fs.Int("frontends", 1, "frontend nodes")
	backends := fs.Int("backends", 2, "backend nodes")
	dir := fs.String("data", "data/dev", "directory for every node's data, the shared account store and the logs")
	smtpBase := fs.Int("smtp-port", 2525, "SMTP port of the first node; the others count up")
	adminBase := fs.Int("admin-port", 8025, "admin port of the first node; the others count up")
	imapBase := fs.Int("imap-port", 1143, "IMAP port (STARTTLS) of the first node; the others count up")
	pop3Base := fs.Int("pop3-port", 1110, "POP3 port (STLS) of the first node; the others count up")
	gossipBase := fs.Int("gossip-port", 7946, "gossip port of the first node; the others count up by 2 (the channel takes the odd ones)")
	partitions := fs.Int("partitions", 16, "account partitions")
	domain := fs.String("domain", "example.test", "local domain")
	backendNice := fs.Int("backend-nice", devBackendNice, "CPU priority (nice) of the backends: the frontends' SMTP sessions wait on the CPU that the backends' deliveries take on one machine; 0 runs every node at the same priority")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *backendNice < -20 || *backendNice > 19 {
		fmt.Fprintf(stderr, "homing dev: --backend-nice %d: want -20..19\n", *backendNice)
		return 2
	}
	// Arguments after the flags (after "--") go to every node's serve.
	if *frontends < 1 || *backends < 1 {
		fmt.Fprintln(stderr, "homing dev: need at least one frontend and one backend")
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "homing dev: %v\n", err)
		return 1
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintf(stderr, "homing dev: %v\n", err)
		return 1
	}
	secret, err := devSecret(filepath.Join(*dir, "secret"))
	if err != nil {
		fmt.Fprintf(stderr, "homing dev: %v\n", err)
		return 1
	}
	var nodes []*devNode
	for i := 0; i < *frontends+*backends; i++ {
		n := &devNode{role: "frontend", name: fmt.Sprintf("fe%d", i+1)}
		if i >= *frontends {
			n.role, n.name = "backend", fmt.Sprintf("be%d", i-*frontends+1)
		}
		n.smtp = "127.0.0.1:" + strconv.Itoa(*smtpBase+i)
		n.admin = "127.0.0.1:" + strconv.Itoa(*adminBase+i)
		n.gossip = "127.0.0.1:" + strconv.Itoa(*gossipBase+2*i)
		n.chn = "127.0.0.1:" + strconv.Itoa(*gossipBase+2*i+1)
		n.imap = "127.0.0.1:" + strconv.Itoa(*imapBase+i)
		n.pop3 = "127.0.0.1:" + strconv.Itoa(*pop3Base+i)
		for _, a := range []string{n.smtp, n.admin, n.gossip, n.chn, n.imap, n.pop3} {
			if l, err := net.Listen("tcp", a); err != nil {
				fmt.Fprintf(stderr, "homing dev: %s is taken (%v); choose other ports with --smtp-port/--admin-port/--gossip-port/--imap-port/--pop3-port\n", a, err)
				return 1
			} else {
				l.Close()
			}
		}
		nodes = append(nodes, n)
	}
	seed := nodes[0].gossip
	// The example filter, when it was built beside this binary (make build).
	filterBin := filepath.Join(filepath.Dir(self), "homing-filter-example")
	if _, err := os.Stat(filterBin); err != nil {
		filterBin = ""
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopAll := func() {
		for _, n := range nodes {
			if n.cmd != nil && n.cmd.Process != nil {
				_ = n.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, n := range nodes {
			if n.done == nil {
				continue
			}
			select {
			case <-n.done:
			case <-time.After(20 * time.Second):
				_ = n.cmd.Process.Kill()
				<-n.done
			}
		}
	}
	for _, n := range nodes {
		args := n.serveArgs(devSettings{dir: *dir, partitions: *partitions, domain: *domain, seed: seed,
			filter: filterBin, backendNice: *backendNice, extra: fs.Args()})
		logf, err := os.OpenFile(filepath.Join(*dir, n.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "homing dev: %v\n", err)
			stopAll()
			return 1
		}
		cmd := exec.Command(self, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = append(os.Environ(), "HOMING_SECRET="+secret)
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(stderr, "homing dev: starting %s: %v\n", n.name, err)
			stopAll()
			return 1
		}
		n.cmd, n.done = cmd, make(chan struct{})
		go func(n *devNode, f *os.File) { n.err = n.cmd.Wait(); f.Close(); close(n.done) }(n, logf)
	}
	// Wait until every node answers and every partition has an owner.
	fe := admin.NewClient("http://"+nodes[0].admin, "")
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := fe.Cluster(ctx)
		if err == nil && len(c.Members) == len(nodes) && allOwned(c) {
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			fmt.Fprintf(stderr, "homing dev: the cluster did not form within 30s (logs in %s)\n", *dir)
			stopAll()
			return 1
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	demo := "demo@" + *domain
	pw := hex.EncodeToString(randBytes(6))
	if _, err := fe.CreateAccount(ctx, admin.CreateAccount{Address: demo, Password: pw}); err != nil {
		pw = "(exists; password unchanged)"
	}
	fmt.Fprintf(stdout, "homing dev: %d frontend(s) and %d backend(s) on loopback (data and logs in %s)\n\n", *frontends, *backends, *dir)
	fmt.Fprintf(stdout, "%-6s %-9s %-16s %-16s %-16s %-16s %-16s %s\n", "NODE", "ROLE", "SMTP", "ADMIN", "IMAP", "POP3", "GOSSIP", "CHANNEL")
	for _, n := range nodes {
		fmt.Fprintf(stdout, "%-6s %-9s %-16s %-16s %-16s %-16s %-16s %s\n", n.name, n.role, n.smtp, n.admin, n.imap, n.pop3, n.gossip, n.chn)
	}
	fmt.Fprintf(stdout, "\nDemo account: %s  password: %s\n", demo, pw)
	host, port, _ := net.SplitHostPort(nodes[0].smtp)
	fmt.Fprintf(stdout, "Send mail:  swaks --server %s --port %s --to %s --from you@example.net\n", host, port, demo)
	shown := pw // in the lines to copy
	if strings.HasPrefix(pw, "(") {
		shown = "PASSWORD"
	}
	ih, ip, _ := net.SplitHostPort(nodes[0].imap)
	ph, pp, _ := net.SplitHostPort(nodes[0].pop3)
	fmt.Fprintf(stdout, "Read it:    curl -s --user '%s:%s' 'imap://%s:%s/INBOX;UID=1'   (IMAP on any node)\n", demo, shown, ih, ip)
	fmt.Fprintf(stdout, "            neomutt -f 'imap://%s@%s:%s/INBOX'\n", strings.ReplaceAll(demo, "@", "%40"), ih, ip)
	fmt.Fprintf(stdout, "            curl -s --user '%s:%s' 'pop3://%s:%s/'   (POP3 on any node: LIST; /1 is RETR 1)\n", demo, shown, ph, pp)
	fmt.Fprintf(stdout, "Look:       bin/homing ctl --admin %s cluster\n", nodes[0].admin)
	fmt.Fprintf(stdout, "            bin/homing ctl --admin %s messages %s\n", nodes[0].admin, demo)
	if filterBin != "" {
		fmt.Fprintf(stdout, "Filter:     every node runs the example filter as \"example\"; turn it on cluster-wide with\n")
		fmt.Fprintf(stdout, "            echo '[{\"name\":\"scan\",\"actions\":[{\"kind\":\"filter\",\"value\":\"example\"}]}]' | bin/homing ctl --admin %s rules set cluster -\n", nodes[0].admin)
	}
	fmt.Fprintf(stdout, "Modes:      frontends are locally-for-others; backends locally, forwarding to them. Try\n")
	fmt.Fprintf(stdout, "            bin/homing ctl --admin %s settings set queue-mode remotely\n", nodes[len(nodes)-1].admin)
	fmt.Fprintf(stdout, "Ctrl-C stops every node.\n")

	exited := make(chan string, len(nodes))
	for _, n := range nodes {
		go func(n *devNode) {
			<-n.done
			exited <- fmt.Sprintf("%s exited: %v", n.name, n.err)
		}(n)
	}
	// A node that dies (kill -9 to see failover) is reported; the others
	// keep running until Ctrl-C.
	for alive := len(nodes); alive > 0; {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout, "\nhoming dev: stopping every node")
			stopAll()
			return 0
		case msg := <-exited:
			alive--
			fmt.Fprintf(stderr, "homing dev: %s (the others keep running; logs in %s)\n", msg, *dir)
		}
	}
	fmt.Fprintln(stderr, "homing dev: every node has exited")
	return 1
}

func allOwned(c admin.Cluster) bool {
	if len(c.Partitions) == 0 {
		return false
	}
	for _, p := range c.Partitions {
		if p.Owner == "" {
			return false
		}
	}
	return true
}

// devSecret reads the dev cluster's secret, creating it on first use.
func devSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return string(b), nil
	}
	s := hex.EncodeToString(randBytes(24))
	return s, os.WriteFile(path, []byte(s), 0o600)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
