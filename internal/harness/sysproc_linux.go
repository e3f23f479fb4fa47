package harness

import "syscall"

// sysProcAttr puts the child in its own process group, so that a Ctrl-C on
// the terminal reaches only the driver, and asks the kernel to SIGKILL the
// child if the thread that started it dies, so that a crashed driver leaves
// no orphans.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
