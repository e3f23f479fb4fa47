//go:build unix && !linux

package harness

import "syscall"

// sysProcAttr puts the child in its own process group, so that a Ctrl-C on
// the terminal reaches only the driver.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
