package merge

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill ffmpeg if streamsnatcher dies (SIGKILL,
// a crash): an orphan would go on writing the .partial output that the next
// run's ffmpeg is about to write.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
