package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestParseProc(t *testing.T) {
	status := []byte("Name:\thoming\nVmHWM:\t  523156 kB\nVmRSS:\t  417048 kB\nRssAnon:\t  300000 kB\nRssFile:\t  117048 kB\nThreads:\t18\n")
	// A command name with a space and a parenthesis, as /proc shows it.
	stat := []byte("20446 (hom ing) S 1 20446 20446 0 -1 4194560 12345 0 12 0 1234 567 0 0 20 0 18 0")
	s, err := parseProc(status, stat)
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKB != 417048 || s.PeakRSSKB != 523156 || s.AnonKB != 300000 || s.FileKB != 117048 || s.CPUTicks != 1234+567 {
		t.Fatalf("parsed %+v, want RSS 417048, peak 523156, ticks 1801", s)
	}
	if _, err := parseProc([]byte("Name:\tx\n"), stat); err == nil {
		t.Error("a status without VmRSS: no error")
	}
	if _, err := parseProc(status, []byte("20446 homing S 1")); err == nil {
		t.Error("a stat without the command name in parentheses: no error")
	}
}

// This very process, read from /proc: some RSS, a peak at least as large,
// and the CPU it has used so far.
func TestReadProcOfThisProcess(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKB <= 0 || s.PeakRSSKB < s.RSSKB || s.CPUTicks < 0 {
		t.Fatalf("sample %+v", s)
	}
}

func TestReportShowsTheNodeProcess(t *testing.T) {
	r := &report{Accepted: 10, Delivered: 10, DeliveryComplete: true,
		Node: &nodeProcess{RSSMB: 55.5, AnonMB: 40, FileMB: 15.5, PeakRSSMB: 60.25, CPUSec: 1.5, CPUPerMsgMs: 0.15, IdlePercent: 0.91, IdleSec: 30}}
	var b bytes.Buffer
	if err := r.writeText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RSS 55.5 MB after the deliveries (anonymous 40.0, mapped files 15.5), peak 60.2 MB; CPU 1.50 s (0.150 ms per delivered message)", "0.91% of a core over 30 s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := r.writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"idlePercent": 0.91`) || !strings.Contains(b.String(), `"peakRssMB": 60.25`) {
		t.Errorf("JSON lacks the node's process:\n%s", b.String())
	}
}
