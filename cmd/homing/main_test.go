package main

import (
	"bytes"
	"strings"
	"testing"
)

// `homing ctl` is ctl.Main with the process's stdin and environment.
func TestRunCtl(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"ctl", "help"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "usage: homing ctl") {
		t.Errorf("homing ctl help: %d %q", code, out.String())
	}
}
