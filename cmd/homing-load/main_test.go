package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/emersion/go-smtp"
	"go.uber.org/goleak"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
	"github.com/homing-mail/homing/testkit/fakemx"
)

// TestMain doubles the test binary as a fake `homing serve` (for --spawn)
// and a fake smtp-source (when invoked under that name), so that the
// process handling is tested without the real binaries.
func TestMain(m *testing.M) {
	switch {
	case filepath.Base(os.Args[0]) == "smtp-source":
		os.Exit(fakeSourceMain(os.Args[1:]))
	case os.Getenv("HOMING_LOAD_FAKE_NODE") == "1":
		os.Exit(fakeNodeMain(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// fakeNodeMain acts as `homing serve --data D --smtp A --admin B
// --domains X --name N`: an SMTP server that counts deliveries and the
// admin API over a fake whose deliveredLocal is that count. It prints its
// arguments and stops on SIGTERM. HOMING_LOAD_FAKE_MODE=crash makes it
// exit at once with status 3; =ignore-term makes it ignore SIGTERM.
func fakeNodeMain(args []string) int {
	fmt.Println("fake node args:", strings.Join(args, " "))
	mode := os.Getenv("HOMING_LOAD_FAKE_MODE")
	if mode == "crash" {
		fmt.Println("boom: cannot open the data directory")
		return 3
	}
	if len(args) == 0 || args[0] != "serve" {
		fmt.Println("not serve")
		return 2
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	data := fs.String("data", "", "")
	smtpAddr := fs.String("smtp", "", "")
	adminAddr := fs.String("admin", "", "")
	fs.String("domains", "", "")
	fs.String("pop3", "", "")
	fs.String("dns", "", "")
	name := fs.String("name", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		fmt.Println(err)
		return 2
	}
	// Signals are set up before anything answers, so a SIGTERM sent
	// once the node is ready meets them.
	sig := make(chan os.Signal, 1)
	if mode == "ignore-term" {
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
	} else {
		signal.Notify(sig, syscall.SIGTERM)
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		fmt.Println(err)
		return 1
	}
	sl, err := net.Listen("tcp", *smtpAddr)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	mta := fakemx.Serve(sl)
	f := admintest.NewFake()
	f.Current.Name = *name
	f.StatsFunc = func() admin.Stats {
		return admin.Stats{Accepted: messagesRead(mta), DeliveredLocal: recipientsAccepted(mta), StoreLatencyP50: 0.001, StoreLatencyP99: 0.002}
	}
	al, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	hs := &http.Server{Handler: admin.NewHandler(f, admin.Options{})}
	go hs.Serve(al)
	<-sig
	hs.Close()
	mta.Close()
	fmt.Println("stopped")
	return 0
}

// messagesRead is the number of messages mx has read (DATA commands),
// whatever it answered.
func messagesRead(mx *fakemx.Server) int64 {
	var n int64
	for _, tx := range mx.Transactions() {
		if tx.DataSeen {
			n++
		}
	}
	return n
}

// recipientsAccepted is the number of recipients of the messages mx
// accepted: what a node would have delivered.
func recipientsAccepted(mx *fakemx.Server) int64 {
	var n int64
	for _, m := range mx.Messages() {
		n += int64(len(m.To))
	}
	return n
}

// fakeSourceMain acts as `smtp-source -c -l LEN -m N -s S -f FROM -t TO
// HOST:PORT`: N messages of a header and LEN payload bytes over S
// parallel sessions, one connection per message, printing the counter.
func fakeSourceMain(args []string) int {
	fs := flag.NewFlagSet("smtp-source", flag.ContinueOnError)
	fs.Bool("c", false, "")
	length := fs.Int("l", 0, "")
	msgs := fs.Int("m", 1, "")
	sessions := fs.Int("s", 1, "")
	from := fs.String("f", "", "")
	to := fs.String("t", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Println("smtp-source: fatal: usage")
		return 1
	}
	addr := fs.Arg(0)
	body := "Subject: smtp-source\r\n\r\n" + strings.Repeat("x", *length) + "\r\n"
	var next, done atomic.Int64
	var mu sync.Mutex
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range *sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(*msgs) {
				if err := sendPlain(addr, *from, *to, body); err != nil {
					mu.Lock()
					fmt.Printf("smtp-source: fatal: %v\n", err)
					mu.Unlock()
					failed.Store(true)
					return
				}
				mu.Lock()
				fmt.Printf("%d\r", done.Add(1))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Println()
	if failed.Load() {
		return 1
	}
	return 0
}

// sendPlain sends one message over a new plaintext connection.
func sendPlain(addr, from, to, body string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, []string{to}, strings.NewReader(body)); err != nil {
		return err
	}
	return c.Quit()
}
