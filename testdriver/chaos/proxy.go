package chaos

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Forwarder is a TCP forwarder on 127.0.0.1 in front of one upstream
// address, which can be cut: Cut closes every connection through it and
// refuses new ones (it accepts and closes them at once) until Restore. The
// suite gives each kvserver its own Forwarder to ZooKeeper, so one server
// can be cut off from ZooKeeper while NATS and the others stay connected.
type Forwarder struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	cut    bool
	closed bool
	conns  map[net.Conn]struct{}
	// accepted and refused count connections, for tests and reports.
	accepted, refused int
	wg                sync.WaitGroup
}

// NewForwarder listens on a free port of 127.0.0.1 and forwards every
// connection to upstream.
func NewForwarder(upstream string) (*Forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &Forwarder{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

// Addr is the address to connect to instead of upstream.
func (f *Forwarder) Addr() string { return f.ln.Addr().String() }

// Cut closes every open connection and refuses new ones until Restore.
func (f *Forwarder) Cut() {
	f.mu.Lock()
	f.cut = true
	conns := f.conns
	f.conns = map[net.Conn]struct{}{}
	f.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (f *Forwarder) Restore() {
	f.mu.Lock()
	f.cut = false
	f.mu.Unlock()
}

// Counts returns how many connections were forwarded and refused.
func (f *Forwarder) Counts() (accepted, refused int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted, f.refused
}

// Close stops listening, closes every connection and waits for the
// forwarding goroutines.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	err := f.ln.Close()
	f.Cut()
	f.wg.Wait()
	return err
}

func (f *Forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		f.mu.Lock()
		refuse := f.cut || f.closed
		if refuse {
			f.refused++
		}
		f.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		f.wg.Add(1)
		go f.forward(c)
	}
}

// forward dials upstream for client c and copies both ways until either
// side closes or the forwarder cuts them.
func (f *Forwarder) forward(c net.Conn) {
	defer f.wg.Done()
	up, err := net.DialTimeout("tcp", f.upstream, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	f.mu.Lock()
	if f.cut || f.closed {
		f.refused++
		f.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	f.accepted++
	f.conns[c], f.conns[up] = struct{}{}, struct{}{}
	f.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// One direction ended: end both, so neither side waits forever.
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	f.mu.Lock()
	delete(f.conns, c)
	delete(f.conns, up)
	f.mu.Unlock()
}
