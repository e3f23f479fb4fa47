package election

import (
	"encoding/binary"
	"net"
	"time"
)

// ZooKeeper clamps the session timeout a client asks for to [2, 20] ×
// its tickTime and says which it granted in the reply to the connect
// request. go-zookeeper uses that value but does not export it, so the
// Elector reads it from the wire: the connect reply is the first message
// on every connection, a 4-byte length, then protocolVersion and timeOut
// (milliseconds) as big-endian int32s.

// connectReplyHead is the length prefix, protocolVersion and timeOut.
const connectReplyHead = 12

// timeoutConn passes a connection to ZooKeeper through and reports the
// session timeout of the connect reply once, when its first bytes have
// been read. go-zookeeper reads each connection from one goroutine at a
// time, so Read needs no lock.
type timeoutConn struct {
	net.Conn
	head   [connectReplyHead]byte
	n      int
	report func(time.Duration)
}

func (c *timeoutConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.n < len(c.head) && n > 0 {
		c.n += copy(c.head[c.n:], p[:n])
		if c.n == len(c.head) {
			if ms := int32(binary.BigEndian.Uint32(c.head[8:12])); ms > 0 {
				c.report(time.Duration(ms) * time.Millisecond)
			}
		}
	}
	return n, err
}

// dial is the Elector's zk.Dialer: a TCP connection that reports the
// negotiated session timeout to setNegotiated.
func (e *Elector) dial(network, address string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, err
	}
	return &timeoutConn{Conn: c, report: e.setNegotiated}, nil
}

// setNegotiated records the session timeout ZooKeeper granted and logs it
// when it differs from the one asked for.
func (e *Elector) setNegotiated(d time.Duration) {
	if old := time.Duration(e.negotiated.Swap(int64(d))); old == d {
		return
	}
	if d != e.cfg.SessionTimeout {
		e.log.Warn("ZooKeeper negotiated a different session timeout; the lease follows it",
			"requested", e.cfg.SessionTimeout, "negotiated", d, "lease", d/2, "lease_interval", e.leaseInterval())
	}
}

// SessionTimeout returns the session timeout ZooKeeper granted in the
// latest connect handshake, or, before the first, the one Config asked
// for. The lease is valid for half of it. Safe for concurrent use.
func (e *Elector) SessionTimeout() time.Duration {
	if d := e.negotiated.Load(); d > 0 {
		return time.Duration(d)
	}
	return e.cfg.SessionTimeout
}

// leaseInterval is Config.LeaseInterval scaled by the negotiated session
// timeout over the requested one, so it keeps its share of the session
// (a tenth by default) and stays below half of the session timeout.
func (e *Elector) leaseInterval() time.Duration {
	st := e.SessionTimeout()
	if st == e.cfg.SessionTimeout {
		return e.cfg.LeaseInterval
	}
	return time.Duration(float64(e.cfg.LeaseInterval) * float64(st) / float64(e.cfg.SessionTimeout))
}
