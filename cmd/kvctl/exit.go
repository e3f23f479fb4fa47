package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/bus"
)

// Exit codes of kvctl.
const (
	ExitOK       = 0 // success
	ExitError    = 1 // any failure: a server error, NATS, a timeout
	ExitUsage    = 2 // bad command line
	ExitNotFound = 3 // get: the key does not exist on the node that answered
)

// exitCode prints err's message to stderr and returns the exit code it
// carries.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ec cli.ExitCoder
	if !errors.As(err, &ec) {
		fmt.Fprintln(stderr, errorLine(err))
		return ExitError
	}
	if msg := ec.Error(); msg != "" {
		fmt.Fprintln(stderr, msg)
	}
	return ec.ExitCode()
}

// errorLine describes err on one line, led by its wire code when it has
// one: "error: not_leader: n2 is a follower".
func errorLine(err error) string {
	var e *bus.Error
	if errors.As(err, &e) {
		return "error: " + e.Error()
	}
	if w := bus.AsError(err); w.Code != bus.CodeInternal || errors.Is(err, bus.ErrInternal) {
		return fmt.Sprintf("error: %s: %v", w.Code, err)
	}
	return fmt.Sprintf("error: %v", err)
}
