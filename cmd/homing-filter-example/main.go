// Command homing-filter-example is a small external content filter for
// Homing. It speaks CommuniGate Pro's helper protocol on standard input
// and output, as package filter describes (github.com/homing-mail/homing/filter),
// and is the model to copy when writing a real one.
//
// Usage (as the program of a filter.Config):
//
//	homing-filter-example [-max-delay 5ms] [-hang-while FILE]
//
// It answers the handshake "seq INTF n" with "seq INTF 3". For each
// "seq FILE path" it reads the header of the message file (the envelope
// lines Homing puts first look like header fields, so they are read with
// it) and answers, by the Subject field:
//
//	Subject contains SPAM-TEST     seq REJECTED "spam"
//	Subject contains DISCARD-TEST  seq DISCARD
//	Subject contains ERROR-TEST    seq ERROR "message refused by the example filter"
//	Subject contains FAIL-TEST     seq FAILURE "temporary failure requested"
//	anything else                  seq ADDHEADER "X-Homing-Filtered: yes" OK
//
// A file it cannot read gets "seq FAILURE". Every request is handled on its
// own goroutine after a random delay of up to -max-delay, so answers come
// out of order, as the protocol allows. It writes an information line
// ("* ...") when it starts. At the end of its input it answers the
// requests still in progress and exits.
//
// Test helpers (used by package filter's tests; harmless otherwise):
//
//   - Subject contains HANG-TEST: the request is never answered.
//   - Subject contains CRASH-TEST: the program exits at once with status 3.
//   - A field "X-Test-Delay: 300ms" adds that delay before the answer.
//   - -hang-while FILE: a request that arrives while FILE exists is never
//     answered; the program writes "* holding seq" instead.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"
)

// interfaceVersion is the helper interface version the example speaks.
const interfaceVersion = 3

// maxHeaderBytes bounds how much of a message file is read to find its
// header fields.
const maxHeaderBytes = 256 << 10

// options are the command-line settings.
type options struct {
	maxDelay  time.Duration
	hangWhile string
}

func main() {
	var o options
	flag.DurationVar(&o.maxDelay, "max-delay", 5*time.Millisecond, "answer each request after a random delay up to this")
	flag.StringVar(&o.hangWhile, "hang-while", "", "test helper: never answer requests that arrive while this file exists")
	flag.Parse()
	os.Exit(run(os.Stdin, os.Stdout, o))
}

// writer serialises answer lines from the request goroutines.
type writer struct {
	mu  sync.Mutex
	out io.Writer
}

func (w *writer) line(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.out, format+"\n", args...)
}

// run serves the protocol until the end of in and returns the exit status.
func run(in io.Reader, out io.Writer, o options) int {
	w := &writer{out: out}
	w.line("* homing-filter-example started (pid %d)", os.Getpid())
	var wg sync.WaitGroup
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		seq, rest, ok := strings.Cut(line, " ")
		if !ok || seq == "" {
			w.line("* cannot parse request %q", line)
			continue
		}
		verb, arg, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(verb) {
		case "INTF":
			w.line("%s INTF %d", seq, interfaceVersion)
		case "FILE":
			if o.hangWhile != "" && exists(o.hangWhile) {
				w.line("* holding %s", seq)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				answer(w, seq, arg, o.maxDelay)
			}()
		default:
			w.line("%s FAILURE \"unknown command\"", seq)
		}
	}
	wg.Wait()
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "homing-filter-example:", err)
		return 1
	}
	return 0
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// answer judges one message file and writes the answer.
func answer(w *writer, seq, path string, maxDelay time.Duration) {
	h, err := readHeader(path)
	if err != nil {
		w.line("%s FAILURE \"cannot read the message file\"", seq)
		return
	}
	delay := time.Duration(0)
	if maxDelay > 0 {
		delay = rand.N(maxDelay)
	}
	if d, err := time.ParseDuration(h["x-test-delay"]); err == nil && d > 0 {
		delay += d
	}
	time.Sleep(delay) // the point of the example: answers come out of order
	w.line("%s %s", seq, decide(h["subject"]))
}

// decide is the answer (after the sequence number) for a Subject; "" means
// no answer at all (the HANG-TEST helper).
func decide(subject string) string {
	switch {
	case strings.Contains(subject, "CRASH-TEST"):
		os.Exit(3)
	case strings.Contains(subject, "HANG-TEST"):
		// Never answers. A sleep, not an empty select: Go would call an
		// idle program with only blocked goroutines a deadlock and exit.
		time.Sleep(time.Duration(math.MaxInt64))
	case strings.Contains(subject, "SPAM-TEST"):
		return `REJECTED "spam"`
	case strings.Contains(subject, "DISCARD-TEST"):
		return "DISCARD"
	case strings.Contains(subject, "ERROR-TEST"):
		return `ERROR "message refused by the example filter"`
	case strings.Contains(subject, "FAIL-TEST"):
		return `FAILURE "temporary failure requested"`
	}
	return `ADDHEADER "X-Homing-Filtered: yes" OK`
}

// readHeader reads the header fields at the top of the file (up to the
// first empty line), unfolded, keyed by lower-case name; the first field
// of a name wins.
func readHeader(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseHeader(io.LimitReader(f, maxHeaderBytes))
}

func parseHeader(r io.Reader) (map[string]string, error) {
	h := make(map[string]string)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxHeaderBytes)
	var name string
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != "" {
				h[name] += line
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			name = ""
			continue
		}
		name = strings.ToLower(strings.TrimSpace(k))
		if _, seen := h[name]; seen {
			name = "" // keep the first field of a name
			continue
		}
		h[name] = strings.TrimSpace(v)
	}
	return h, sc.Err()
}
