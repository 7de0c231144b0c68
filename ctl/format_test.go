package ctl

import (
	"testing"
	"time"
)

func TestSizes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB", 2 << 40: "2.0 TiB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
	for in, want := range map[string]int64{"1048576": 1 << 20, "500MiB": 500 << 20, "500M": 500 << 20, "2G": 2 << 30, "64k": 64 << 10, "1 GB": 1 << 30, "3TiB": 3 << 40, "0": 0} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-5", "5X", "9999999999T", "1.5G"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestAgeOf(t *testing.T) {
	now := t0
	for d, want := range map[time.Duration]string{
		0:                                     "0s",
		-time.Minute:                          "0s", // a clock ahead of ours
		59*time.Second + 999*time.Millisecond: "59s",
		4*time.Minute + 12*time.Second:        "4m12s",
		3*time.Hour + 7*time.Minute + 59*time.Second: "3h07m",
		53 * time.Hour: "2d05h",
	} {
		at := now.Add(-d)
		if got := ageOf(&at, now); got != want {
			t.Errorf("age %v = %q, want %q", d, got, want)
		}
	}
	if got := ageOf(nil, now); got != "-" {
		t.Errorf("no oldest entry: %q", got)
	}
}
