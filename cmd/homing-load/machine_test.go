package main

import (
	"strings"
	"testing"
)

func TestCPUModel(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC   7B13 64-Core Processor\nprocessor\t: 1\nmodel name\t: other\n"
	if got := cpuModel(strings.NewReader(info)); got != "AMD EPYC 7B13 64-Core Processor" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel(strings.NewReader("processor: 0\n")); got != "" {
		t.Errorf("cpuModel without a model = %q", got)
	}
	if m := thisMachine(); m.NProc < 1 || m.GoVersion == "" || m.CPU == "" {
		t.Errorf("thisMachine = %+v", m)
	}
}
