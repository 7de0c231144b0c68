package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/homing-mail/homing/admin"
)

// procSample is what /proc tells of a process at one moment (Linux).
type procSample struct {
	RSSKB, PeakRSSKB int64 // VmRSS, VmHWM
	AnonKB, FileKB   int64 // RssAnon (heap, stacks), RssFile (mapped files: badger's value logs and tables)
	CPUTicks         int64 // utime + stime, in clock ticks (USER_HZ, 100/s)
}

// clockTicks is USER_HZ: Linux reports utime and stime in hundredths of a
// second on every architecture Go runs on.
const clockTicks = 100

// readProc samples process pid from /proc/PID/status and /proc/PID/stat.
func readProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	return parseProc(status, stat)
}

// parseProc reads the sample out of the two files' contents.
func parseProc(status, stat []byte) (procSample, error) {
	var s procSample
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			s.RSSKB = n
		case "VmHWM":
			s.PeakRSSKB = n
		case "RssAnon":
			s.AnonKB = n
		case "RssFile":
			s.FileKB = n
		}
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields after the last ')' start with field 3 (state).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, errors.New("/proc/PID/stat: no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, errors.New("/proc/PID/stat: too few fields")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return s, errors.New("/proc/PID/stat: utime or stime is not a number")
	}
	s.CPUTicks = utime + stime
	if s.RSSKB == 0 {
		return s, errors.New("/proc/PID/status: no VmRSS")
	}
	return s, nil
}

// nodeProcess is what the report says of the spawned node's process.
type nodeProcess struct {
	RSSMB       float64 `json:"rssMB"`       // after the deliveries
	PeakRSSMB   float64 `json:"peakRssMB"`   // VmHWM over the whole run
	AnonMB      float64 `json:"anonMB"`      // of RSSMB: anonymous memory (the heap)
	FileMB      float64 `json:"fileMB"`      // of RSSMB: mapped files (badger's value logs and tables)
	CPUSec      float64 `json:"cpuSec"`      // user+system from its start to the end of the deliveries
	CPUPerMsgMs float64 `json:"cpuPerMsgMs"` // CPUSec per delivered message
	// Idle, with --idle: the node's CPU over IdleSec once every partition
	// has closed its data (nothing left to do).
	IdlePercent float64 `json:"idlePercent,omitempty"`
	IdleSec     float64 `json:"idleSec,omitempty"`
	// IdleRSSMB (anonymous IdleAnonMB) is the RSS at the end of that
	// window: what the node keeps once the work is over.
	IdleRSSMB  float64 `json:"idleRssMB,omitempty"`
	IdleAnonMB float64 `json:"idleAnonMB,omitempty"`
	IdleError  string  `json:"idleError,omitempty"`
}

// idlePoll is how often the partitions are asked whether they are idle.
const idlePoll = 500 * time.Millisecond

func mb(kb int64) float64 { return float64(kb) / 1024 }

// measureIdle waits until every partition of the node is idle (its data
// closed, api/v1/partitions), then returns the share of a core pid used
// over window and pid's sample at its end.
func measureIdle(ctx context.Context, c *admin.Client, pid int, window, wait time.Duration) (float64, procSample, error) {
	deadline := time.Now().Add(wait)
	for {
		ps, err := c.Partitions(ctx)
		idle := err == nil && len(ps) > 0
		for _, p := range ps {
			idle = idle && p.Idle
		}
		if idle {
			break
		}
		if time.Now().After(deadline) {
			return 0, procSample{}, fmt.Errorf("the partitions were not all idle within %s (--serve-arg=--partition-idle=10s --serve-arg=--account-idle=10s shortens it)", wait)
		}
		select {
		case <-ctx.Done():
			return 0, procSample{}, ctx.Err()
		case <-time.After(idlePoll):
		}
	}
	before, err := readProc(pid)
	if err != nil {
		return 0, procSample{}, err
	}
	start := time.Now()
	select { // the measurement's window
	case <-ctx.Done():
		return 0, procSample{}, ctx.Err()
	case <-time.After(window):
	}
	after, err := readProc(pid)
	if err != nil {
		return 0, procSample{}, err
	}
	return float64(after.CPUTicks-before.CPUTicks) / clockTicks / time.Since(start).Seconds(), after, nil
}
