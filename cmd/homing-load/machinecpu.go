package main

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// cpuTimes is the first line of /proc/stat: the time all CPUs spent in
// each state since boot, in clock ticks (proc(5)).
type cpuTimes struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal int64
}

func (c cpuTimes) total() int64 {
	return c.User + c.Nice + c.System + c.Idle + c.IOWait + c.IRQ + c.SoftIRQ + c.Steal
}

// readCPUTimes samples /proc/stat (Linux).
func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseCPUTimes(b)
}

// parseCPUTimes reads the "cpu" line of /proc/stat's contents. Kernels
// older than 2.6.11 have no steal column; it is then 0.
func parseCPUTimes(b []byte) (cpuTimes, error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return cpuTimes{}, errors.New("/proc/stat: no cpu line")
	}
	var v [8]int64
	for i := range v {
		if i+1 >= len(f) {
			break
		}
		n, err := strconv.ParseInt(f[i+1], 10, 64)
		if err != nil {
			return cpuTimes{}, errors.New("/proc/stat: bad cpu line: " + line)
		}
		v[i] = n
	}
	return cpuTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, nil
}

// machineCPU is how the machine's CPUs spent a window, in percent of all
// of them: busy is everything but idle and iowait (so also the load
// client, the other nodes of a cluster and whatever else runs); nice is
// the part of it in processes of lowered priority (a dev cluster's
// backends).
type machineCPU struct {
	BusyPercent   float64 `json:"busyPercent"`
	NicePercent   float64 `json:"nicePercent"`
	SystemPercent float64 `json:"systemPercent"` // system + irq + softirq
	IdlePercent   float64 `json:"idlePercent"`
	IOWaitPercent float64 `json:"iowaitPercent"`
	StealPercent  float64 `json:"stealPercent"`
}

// cpuBetween is the machine's use of its CPUs from a to b; ok is false
// when no tick passed.
func cpuBetween(a, b cpuTimes) (machineCPU, bool) {
	t := float64(b.total() - a.total())
	if t <= 0 {
		return machineCPU{}, false
	}
	pct := func(x, y int64) float64 { return roundTo(100*float64(y-x)/t, 1) }
	m := machineCPU{
		NicePercent:   pct(a.Nice, b.Nice),
		SystemPercent: pct(a.System+a.IRQ+a.SoftIRQ, b.System+b.IRQ+b.SoftIRQ),
		IdlePercent:   pct(a.Idle, b.Idle),
		IOWaitPercent: pct(a.IOWait, b.IOWait),
		StealPercent:  pct(a.Steal, b.Steal),
	}
	m.BusyPercent = roundTo(100-100*float64((b.Idle-a.Idle)+(b.IOWait-a.IOWait))/t, 1)
	return m, true
}

// cpuWindow measures the machine's CPU from its start to use or busy.
type cpuWindow struct {
	start cpuTimes
	err   error
}

func startCPUWindow() cpuWindow {
	t, err := readCPUTimes()
	return cpuWindow{start: t, err: err}
}

// use is the machine's use of its CPUs since the window started; ok is
// false when /proc/stat cannot tell.
func (w cpuWindow) use() (machineCPU, bool) {
	if w.err != nil {
		return machineCPU{}, false
	}
	end, err := readCPUTimes()
	if err != nil {
		return machineCPU{}, false
	}
	return cpuBetween(w.start, end)
}

// busy is the machine's busy percent since the window started; 0 when
// /proc/stat cannot tell.
func (w cpuWindow) busy() float64 {
	m, _ := w.use()
	return m.BusyPercent
}
