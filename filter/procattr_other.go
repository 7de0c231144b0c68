//go:build !unix

package filter

import (
	"os"
	"os/exec"
)

// setProcAttr does nothing where there are no process groups.
func setProcAttr(cmd *exec.Cmd) {}

// killGroup kills the program itself.
func killGroup(p *os.Process) { _ = p.Kill() }
