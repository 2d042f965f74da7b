package merge

import (
	"os"
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill ffmpeg if streamsnatcher dies (SIGKILL,
// a crash): an orphan would go on writing the .partial output that the next
// run's ffmpeg is about to write.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// pipeSize is what growPipe asks for: room for a whole copy buffer (copyBufs), so that a write into ffmpeg's
// pipe is one wake-up of its reader, not eight (Linux's default pipe holds 64 KiB).
const pipeSize = 1 << 20

// growPipe enlarges the pipe w writes to, as far as fs.pipe-max-size allows; a pipe that cannot grow works
// as it is.
func growPipe(w *os.File) {
	rc, err := w.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETPIPE_SZ, pipeSize)
	})
}
