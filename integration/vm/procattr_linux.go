package vm

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes qemu die with the test binary that started it, so that
// a killed test leaves no emulator running.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
