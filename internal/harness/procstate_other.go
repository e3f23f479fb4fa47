//go:build unix && !linux

package harness

import "errors"

// procState is not available without /proc.
func procState(pid int) (byte, error) { return 0, errors.New("process state not available") }

// stateKnown reports whether procState works on this system.
const stateKnown = false
