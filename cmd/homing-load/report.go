package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// params are the run's parameters as the report shows them.
type params struct {
	N        int    `json:"n"`
	Size     int    `json:"size"`
	C        int    `json:"c"`
	Accounts int    `json:"accounts"`
	Domain   string `json:"domain"`
	// Target is "spawned PATH" or the SMTP address of a running node.
	Target string `json:"target"`
}

// report is everything a run measured; --json prints it as one object.
type report struct {
	Machine machine `json:"machine"`
	Params  params  `json:"params"`

	AccountsCreated int     `json:"accountsCreated"`
	AccountsSec     float64 `json:"accountsSec"`

	Accepted        int64   `json:"accepted"`
	TempFailures    int64   `json:"tempFailures"` // 4xx replies
	PermFailures    int64   `json:"permFailures"` // 5xx replies
	IOErrors        int64   `json:"ioErrors"`     // connection failures
	Unsent          int64   `json:"unsent"`       // canceled before sending
	AcceptWindowSec float64 `json:"acceptWindowSec"`
	AcceptedPerSec  float64 `json:"acceptedPerSec"`

	Delivered        int64   `json:"delivered"`
	DeliverWindowSec float64 `json:"deliverWindowSec"`
	DeliveredPerSec  float64 `json:"deliveredPerSec"`
	DeliveryComplete bool    `json:"deliveryComplete"`
	DeliveryError    string  `json:"deliveryError,omitempty"`

	Data250P50Ms float64 `json:"data250P50Ms"`
	Data250P99Ms float64 `json:"data250P99Ms"`
	Data250MaxMs float64 `json:"data250MaxMs"`
	// MAIL sent -> 354 read: the envelope's three round trips.
	EnvelopeP50Ms float64 `json:"envelopeP50Ms"`
	EnvelopeP99Ms float64 `json:"envelopeP99Ms"`
	StoreP50Ms    float64 `json:"storeP50Ms"` // received -> stored, from /api/v1/stats
	StoreP99Ms    float64 `json:"storeP99Ms"`

	Bounced  int64 `json:"bounced"`  // during the run, from /api/v1/stats
	Deferred int64 `json:"deferred"` // during the run

	ErrorSamples []string      `json:"errorSamples,omitempty"`
	SMTPSource   *sourceReport `json:"smtpSource,omitempty"`
	// MachineCPU is how the machine's CPUs were used from the first MAIL
	// to the last delivery (Linux): whether the run was bound by the CPU
	// (little idle) or by waits (sync rounds, round trips).
	MachineCPU *machineCPU `json:"machineCpu,omitempty"`
	// Node is the spawned node's process (one node, Linux).
	Node     *nodeProcess `json:"node,omitempty"`
	NodeDir  string       `json:"nodeDir,omitempty"` // kept with --keep
	NodeStop string       `json:"nodeStop,omitempty"`
}

// OK reports whether the run is a valid measurement: something was
// accepted and everything accepted was delivered in time.
func (r *report) OK() bool { return r.Accepted > 0 && r.DeliveryComplete }

// writeJSON prints the report as one indented JSON object.
func (r *report) writeJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeText prints the report for people.
func (r *report) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := r.Params
	fmt.Fprintf(tw, "machine\t%d CPUs, %s, %s %s\n", r.Machine.NProc, r.Machine.CPU, r.Machine.GoVersion, r.Machine.OS)
	fmt.Fprintf(tw, "params\tn=%d size=%d c=%d accounts=%d domain=%s (%s)\n", p.N, p.Size, p.C, p.Accounts, p.Domain, p.Target)
	fmt.Fprintf(tw, "accounts\t%d created in %.2f s\n", r.AccountsCreated, r.AccountsSec)
	fmt.Fprintf(tw, "accepted\t%d of %d in %.3f s: %.1f msg/s\n", r.Accepted, p.N, r.AcceptWindowSec, r.AcceptedPerSec)
	complete := "complete"
	if !r.DeliveryComplete {
		complete = "INCOMPLETE: " + r.DeliveryError
	}
	fmt.Fprintf(tw, "delivered\t%d in %.3f s: %.1f msg/s (%s)\n", r.Delivered, r.DeliverWindowSec, r.DeliveredPerSec, complete)
	fmt.Fprintf(tw, "DATA->250\tp50 %.2f ms, p99 %.2f ms, max %.2f ms\n", r.Data250P50Ms, r.Data250P99Ms, r.Data250MaxMs)
	fmt.Fprintf(tw, "MAIL->354\tp50 %.2f ms, p99 %.2f ms (MAIL, RCPT, DATA: three round trips)\n", r.EnvelopeP50Ms, r.EnvelopeP99Ms)
	fmt.Fprintf(tw, "received->stored\tp50 %.2f ms, p99 %.2f ms\n", r.StoreP50Ms, r.StoreP99Ms)
	if m := r.MachineCPU; m != nil {
		fmt.Fprintf(tw, "machine CPU\tbusy %.1f%% (system %.1f%%, nice %.1f%%, steal %.1f%%), idle %.1f%%, iowait %.1f%% (all CPUs, sending and delivering)\n",
			m.BusyPercent, m.SystemPercent, m.NicePercent, m.StealPercent, m.IdlePercent, m.IOWaitPercent)
	}
	fmt.Fprintf(tw, "errors\t4xx=%d 5xx=%d io=%d unsent=%d; node: bounced=%d deferred=%d\n",
		r.TempFailures, r.PermFailures, r.IOErrors, r.Unsent, r.Bounced, r.Deferred)
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(tw, "\t%s\n", oneLine(s))
	}
	if s := r.SMTPSource; s != nil {
		if s.Skipped != "" {
			fmt.Fprintf(tw, "smtp-source\tskipped: %s\n", s.Skipped)
		} else {
			fmt.Fprintf(tw, "smtp-source\t%s\n", s.Command)
			fmt.Fprintf(tw, "\t%d completed in %.3f s: %.1f msg/s (wall time)\n", s.Completed, s.WallSec, s.AcceptedPerSec)
			if s.Error != "" {
				fmt.Fprintf(tw, "\terror: %s\n", oneLine(s.Error))
			}
			if s.DeliveryComplete {
				fmt.Fprintf(tw, "\t%d delivered: %.1f msg/s (complete)\n", s.Delivered, s.DeliveredPerSec)
			} else {
				fmt.Fprintf(tw, "\t%d delivered before the deadline (INCOMPLETE)\n", s.Delivered)
			}
			fmt.Fprintf(tw, "\tnode: bounced=%d deferred=%d\n", s.Bounced, s.Deferred)
		}
	}
	if n := r.Node; n != nil {
		fmt.Fprintf(tw, "node process\tRSS %.1f MB after the deliveries (anonymous %.1f, mapped files %.1f), peak %.1f MB; CPU %.2f s (%.3f ms per delivered message)\n",
			n.RSSMB, n.AnonMB, n.FileMB, n.PeakRSSMB, n.CPUSec, n.CPUPerMsgMs)
		switch {
		case n.IdleError != "":
			fmt.Fprintf(tw, "idle\t%s\n", oneLine(n.IdleError))
		case n.IdleSec > 0:
			fmt.Fprintf(tw, "idle\t%.2f%% of a core over %.0f s, every partition idle; RSS %.1f MB at its end (anonymous %.1f)\n",
				n.IdlePercent, n.IdleSec, n.IdleRSSMB, n.IdleAnonMB)
		}
	}
	if r.NodeDir != "" {
		fmt.Fprintf(tw, "node dir\t%s (kept)\n", r.NodeDir)
	}
	if r.NodeStop != "" {
		fmt.Fprintf(tw, "node stop\t%s\n", oneLine(r.NodeStop))
	}
	return tw.Flush()
}

// oneLine keeps a message on one line of the report.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
