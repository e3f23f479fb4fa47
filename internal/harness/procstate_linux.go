package harness

import (
	"bytes"
	"fmt"
	"os"
)

// procState returns the one-letter state of a process from
// /proc/<pid>/stat ('R' running, 'S' sleeping, 'T' stopped, ...).
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may contain spaces; the
	// state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, b)
	}
	return b[i+2], nil
}

// stateKnown reports whether procState works on this system.
const stateKnown = true
