package main

import "testing"

// The first line of /proc/stat gives the CPU states in ticks; a window's
// use is the difference of two samples, in percent of all ticks.
func TestCPUBetween(t *testing.T) {
	a, err := parseCPUTimes([]byte("cpu  1000 100 300 5000 50 0 20 0 0 0\ncpu0 500 50 150 2500 25 0 10 0 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	// 200 ticks later: user +60, nice +40, system +30, idle +50,
	// iowait +10, softirq +10.
	b, err := parseCPUTimes([]byte("cpu  1060 140 330 5050 60 0 30 0 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := cpuBetween(a, b)
	if !ok {
		t.Fatal("no ticks between the samples")
	}
	want := machineCPU{BusyPercent: 70, NicePercent: 20, SystemPercent: 20, IdlePercent: 25, IOWaitPercent: 5}
	if m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	if _, ok := cpuBetween(a, a); ok {
		t.Error("a window without ticks reported a use")
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n", "cpu 1 2 3\n"} {
		if _, err := parseCPUTimes([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// The real /proc/stat parses and its counters only grow.
func TestReadCPUTimes(t *testing.T) {
	a, err := readCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	b, err := readCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if a.total() <= 0 || b.total() < a.total() {
		t.Errorf("totals %d then %d", a.total(), b.total())
	}
}
