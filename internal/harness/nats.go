package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// natsReadyTimeout bounds how long StartNATS and Restart wait for the
// embedded server to accept connections.
const natsReadyTimeout = 10 * time.Second

// NATSOptions configures StartNATS.
type NATSOptions struct {
	// Port is the client port on 127.0.0.1; 0 means a random free port.
	Port int
	// Log, when not nil, receives the server's log (notices, warnings and
	// errors). nil means no log.
	Log io.Writer
	// Name is the server's name; "" lets the server pick one.
	Name string
	// JetStream enables JetStream, storing in StoreDir (required then).
	JetStream bool
	StoreDir  string
	// SyncAlways makes JetStream's file storage fsync every write, as
	// nats-server's `sync_interval: always`; false keeps its default (a
	// sync every two minutes).
	SyncAlways bool
	// Tags are the server's placement tags (e.g. "node:s1").
	Tags []string
	// ClusterName, ClusterPort and Routes join a NATS cluster: the route
	// listener on 127.0.0.1:ClusterPort and the other servers' route URLs.
	ClusterName string
	ClusterPort int
	Routes      []string
}

// NATS is an embedded NATS server (github.com/nats-io/nats-server/v2)
// listening on 127.0.0.1. Its methods are safe for concurrent use.
type NATS struct {
	port int
	log  io.Writer
	opts NATSOptions

	mu  sync.Mutex
	srv *server.Server
}

// StartNATS starts an embedded NATS server and waits until it accepts
// connections (at most 10 s; the server runs in this process, so there is
// nothing else to wait for). It does not install signal handlers.
func StartNATS(opts NATSOptions) (*NATS, error) {
	n := &NATS{port: opts.Port, log: opts.Log, opts: opts}
	if n.port == 0 {
		n.port = -1 // let the server pick a random port
	}
	srv, err := n.start()
	if err != nil {
		return nil, err
	}
	n.srv = srv
	n.port = srv.Addr().(*net.TCPAddr).Port
	return n, nil
}

// start creates and starts a server on n.port and waits for readiness.
func (n *NATS) start() (*server.Server, error) {
	sopts := &server.Options{
		ServerName: n.opts.Name,
		Host:       "127.0.0.1",
		Port:       n.port,
		NoSigs:     true,
		NoLog:      n.log == nil,
		JetStream:  n.opts.JetStream,
		StoreDir:   n.opts.StoreDir,
		SyncAlways: n.opts.SyncAlways,
		Tags:       jwt.TagList(n.opts.Tags),
	}
	if n.opts.ClusterPort != 0 {
		sopts.Cluster = server.ClusterOpts{Name: n.opts.ClusterName, Host: "127.0.0.1", Port: n.opts.ClusterPort}
		sopts.Routes = server.RoutesFromStr(strings.Join(n.opts.Routes, ","))
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if n.log != nil {
		srv.SetLogger(&natsLogger{w: n.log}, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(natsReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("nats on 127.0.0.1:%d: not ready for connections after %v", n.port, natsReadyTimeout)
	}
	return srv, nil
}

// URL is the client URL, "nats://127.0.0.1:port". It stays the same across
// Restart.
func (n *NATS) URL() string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port))
}

// Port is the client port.
func (n *NATS) Port() int { return n.port }

// Server returns the current embedded server; after Restart it is a new
// one.
func (n *NATS) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Shutdown stops the server and waits until it has shut down, closing every
// client connection. It may be called more than once.
func (n *NATS) Shutdown() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.shutdownLocked()
}

func (n *NATS) shutdownLocked() {
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// Restart shuts the server down (closing every client connection) and
// starts a new one on the same port, waiting until it accepts connections.
// Clients that reconnect find it at the same URL. Restart also starts a
// server that was shut down.
func (n *NATS) Restart() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.shutdownLocked()
	srv, err := n.start()
	if err != nil {
		return fmt.Errorf("nats restart: %w", err)
	}
	n.srv = srv
	return nil
}

// natsLogger writes the embedded server's log lines to an io.Writer.
type natsLogger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *natsLogger) logf(level, format string, v []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s [nats] %s %s\n", time.Now().Format("15:04:05.000"), level, fmt.Sprintf(format, v...))
}

// Noticef implements server.Logger.
func (l *natsLogger) Noticef(format string, v ...any) { l.logf("INF", format, v) }

// Warnf implements server.Logger.
func (l *natsLogger) Warnf(format string, v ...any) { l.logf("WRN", format, v) }

// Fatalf implements server.Logger. It logs and does not exit: the server is
// embedded in a process that must be able to clean up.
func (l *natsLogger) Fatalf(format string, v ...any) { l.logf("FTL", format, v) }

// Errorf implements server.Logger.
func (l *natsLogger) Errorf(format string, v ...any) { l.logf("ERR", format, v) }

// Debugf implements server.Logger.
func (l *natsLogger) Debugf(format string, v ...any) { l.logf("DBG", format, v) }

// Tracef implements server.Logger.
func (l *natsLogger) Tracef(format string, v ...any) { l.logf("TRC", format, v) }

var _ server.Logger = (*natsLogger)(nil)

// StartNATSCluster starts n embedded servers named s1..sn, tagged
// "node:s1"..., clustered on loopback when n > 1, each with JetStream
// storing under dir (fsyncing every write with syncAlways), and waits
// until JetStream is current everywhere (and, clustered, has a meta
// leader). On error every server started is shut down.
func StartNATSCluster(ctx context.Context, n int, dir string, log io.Writer, syncAlways bool) (_ []*NATS, err error) {
	if n < 1 {
		return nil, fmt.Errorf("nats cluster of %d servers: need at least one", n)
	}
	var servers []*NATS
	defer func() {
		if err != nil {
			for _, s := range servers {
				s.Shutdown()
			}
		}
	}()
	ports, err := FreePorts(n)
	if err != nil {
		return nil, err
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(p))
	}
	for i := range n {
		name := "s" + strconv.Itoa(i+1)
		o := NATSOptions{Name: name, Log: log, JetStream: true, StoreDir: filepath.Join(dir, name), SyncAlways: syncAlways, Tags: []string{"node:" + name}}
		if n > 1 {
			o.ClusterName, o.ClusterPort, o.Routes = "zkv", ports[i], routes
		}
		s, err := StartNATS(o)
		if err != nil {
			return nil, fmt.Errorf("nats %s: %w", name, err)
		}
		servers = append(servers, s)
	}
	err = WaitFor(ctx, 50*time.Millisecond, func() error {
		leader := false
		for _, s := range servers {
			srv := s.Server()
			if !srv.JetStreamIsCurrent() {
				return fmt.Errorf("%s: JetStream not current", srv.Name())
			}
			leader = leader || srv.JetStreamIsLeader()
		}
		if n > 1 && !leader {
			return errors.New("no JetStream meta leader yet")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nats cluster: %w", err)
	}
	return servers, nil
}
