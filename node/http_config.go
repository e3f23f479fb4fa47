package node

import (
	"errors"
	"fmt"
	"net"
)

// validateHTTPSecurity checks the HTTP TLS, auth and pprof settings.
func (c Config) validateHTTPSecurity() []error {
	var errs []error
	if (c.HTTPTLSCert == "") != (c.HTTPTLSKey == "") {
		errs = append(errs, fmt.Errorf("http tls cert %q and key %q: give both or neither", c.HTTPTLSCert, c.HTTPTLSKey))
	}
	if c.HTTPTLSClientCA != "" && c.HTTPTLSCert == "" {
		errs = append(errs, errors.New("http tls client CA needs a server certificate and key"))
	}
	if c.HTTPPprof && c.HTTPAddr != "" && !c.httpAuthenticated() && !isLoopback(c.HTTPAddr) {
		errs = append(errs, fmt.Errorf("http pprof on %s would be open to anyone: add an auth file or a client CA, or bind to loopback", c.HTTPAddr))
	}
	return errs
}

// httpAuthenticated reports whether HTTP callers must prove who they are.
func (c Config) httpAuthenticated() bool {
	return c.HTTPAuthFile != "" || c.HTTPTLSClientCA != ""
}

// httpOpenWarning is the warning of an HTTP API that anyone on the network
// may use: bound to a non-loopback address without authentication. It is
// "" otherwise.
func (c Config) httpOpenWarning() string {
	if c.HTTPAddr == "" || c.httpAuthenticated() || isLoopback(c.HTTPAddr) {
		return ""
	}
	return fmt.Sprintf("HTTP API on %s accepts anyone's reads and writes: no auth file or client CA", c.HTTPAddr)
}

// isLoopback reports whether the host of addr is a loopback address or
// "localhost". An empty or unspecified host listens everywhere.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
