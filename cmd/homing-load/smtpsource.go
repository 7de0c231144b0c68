package main

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// sourceReport is the result of the optional smtp-source run (Postfix's
// SMTP test generator, smtp-source(1)), for comparison with the Go run.
type sourceReport struct {
	Command string `json:"command"`
	// Skipped says why it did not run (not on PATH).
	Skipped string `json:"skipped,omitempty"`
	// Completed is its running counter (-c) at the end: DATA commands
	// completed. Without -A smtp-source stops at the first refusal.
	Completed int64   `json:"completed"`
	WallSec   float64 `json:"wallSec"`
	// AcceptedPerSec is Completed over the wall time of the command.
	AcceptedPerSec float64 `json:"acceptedPerSec"`
	Error          string  `json:"error,omitempty"`
	// Delivered is how many of its messages the node counted as
	// delivered locally before the deadline; DeliveredPerSec is that over
	// the time from its start to the poll that saw the count.
	Delivered        int64   `json:"delivered"`
	DeliveredPerSec  float64 `json:"deliveredPerSec"`
	DeliveryComplete bool    `json:"deliveryComplete"`
	// Bounced and Deferred are the node's counters during this phase.
	// All of smtp-source's messages go to one account, so its quota may
	// defer some.
	Bounced  int64 `json:"bounced"`
	Deferred int64 `json:"deferred"`
}

// smtpSourceArgs is the command line: -c (counter) -l SIZE (payload
// bytes, headers come on top) -m N -s C sessions, one recipient.
func smtpSourceArgs(cfg config, smtpAddr string) []string {
	return []string{"-c", "-l", strconv.Itoa(cfg.Size), "-m", strconv.Itoa(cfg.N), "-s", strconv.Itoa(cfg.sessions()),
		"-f", cfg.From, "-t", accountAddr(0, accountWidth(cfg.Accounts), cfg.Domain), smtpAddr}
}

// runSMTPSource runs smtp-source if it is on PATH and measures its wall
// time. The delivery fields are filled in by the caller.
func runSMTPSource(ctx context.Context, cfg config, smtpAddr string) sourceReport {
	args := smtpSourceArgs(cfg, smtpAddr)
	r := sourceReport{Command: "smtp-source " + strings.Join(args, " ")}
	path, err := exec.LookPath("smtp-source")
	if err != nil {
		r.Skipped = "smtp-source is not on PATH (Debian: apt-get install postfix)"
		return r
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	r.WallSec = wall.Seconds()
	r.Completed, r.Error = parseSourceOutput(out.String())
	if err != nil && r.Error == "" {
		r.Error = err.Error()
	}
	r.AcceptedPerSec = rate(r.Completed, wall)
	return r
}

// parseSourceOutput reads smtp-source's output: a counter rewritten with
// CR ("1\r2\r3\r...") and possibly a "smtp-source: fatal: ..." line. It
// returns the last count and the fatal message.
func parseSourceOutput(out string) (int64, string) {
	var count int64
	var msg string
	for _, f := range strings.FieldsFunc(out, func(r rune) bool { return r == '\r' || r == '\n' }) {
		f = strings.TrimSpace(f)
		if n, err := strconv.ParseInt(f, 10, 64); err == nil {
			count = n
			continue
		}
		if strings.HasPrefix(f, "smtp-source:") && msg == "" {
			msg = strings.TrimSpace(strings.TrimPrefix(f, "smtp-source:"))
		}
	}
	return count, msg
}
