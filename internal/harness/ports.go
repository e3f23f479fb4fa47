package harness

import (
	"errors"
	"fmt"
	"net"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// binds 127.0.0.1:0, notes the port the kernel chose and closes the
// listener. Another process may take the port before the caller binds it;
// the starters in this package retry with new ports when that happens.
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1. All n listeners
// are held open until every port is chosen, so the ports differ from each
// other.
func FreePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// errAddrInUse marks a start that failed because a port chosen by FreePort
// was taken by someone else before the child bound it.
var errAddrInUse = errors.New("address already in use")

// looksLikeAddrInUse reports whether a log tail shows a failure to bind.
func looksLikeAddrInUse(tail string) bool {
	return containsAny(tail, "Address already in use", "address already in use", "BindException")
}
