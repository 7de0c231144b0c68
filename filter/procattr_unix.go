//go:build unix

package filter

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts the program in a process group of its own, so that
// killGroup reaches the children of a shell script too.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills the program's process group and the program itself.
// Errors (the group is empty, the process was reaped) are of no interest.
func killGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	_ = p.Kill()
}
