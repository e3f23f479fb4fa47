package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/go-zookeeper/zk"
	"github.com/rs/zerolog"

	"zkv/internal/harness"
)

// ZooKeeper deployments the election benchmark compares.
const (
	ZKStandalone = "standalone" // one local server
	ZKEnsemble   = "ensemble"   // three local servers on loopback
	ZKRemote     = "remote"     // one local server behind a latency proxy
)

// ParseZKMode checks a --zk value.
func ParseZKMode(s string) (string, error) {
	switch m := strings.ToLower(strings.TrimSpace(s)); m {
	case ZKStandalone, ZKEnsemble, ZKRemote:
		return m, nil
	}
	return "", fmt.Errorf("zk %q: want standalone, ensemble or remote", s)
}

// ZKOptions configures StartZK.
type ZKOptions struct {
	// TickTime of the local servers; 0 means harness.DefaultTickTime.
	TickTime time.Duration
	// Latency and Jitter are the one-way delay the remote proxy adds to
	// each direction.
	Latency, Jitter time.Duration
	// External, if set, is the host:port of a real ZooKeeper to use instead
	// of starting one; the mode is then only a label.
	External string
	// Log receives the servers' output; nil discards it.
	Log io.Writer
}

// ZKEnv is a running ZooKeeper deployment.
type ZKEnv struct {
	// Mode is standalone, ensemble or remote.
	Mode string
	// Connect is the connect string clients use (through the proxy for
	// remote).
	Connect string
	// Direct are the servers' own addresses, for four-letter commands.
	Direct []string
	// TickTime is the servers' tick (0 when unknown: an external server).
	TickTime time.Duration
	// Proxy describes the latency proxy, "" without one.
	Proxy string

	stop func()
}

// StartZK starts the deployment mode asks for.
func StartZK(ctx context.Context, mode string, o ZKOptions) (*ZKEnv, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	tick := o.TickTime
	if tick <= 0 {
		tick = harness.DefaultTickTime
	}
	if o.External != "" {
		env := &ZKEnv{Mode: mode, Connect: o.External, Direct: strings.Split(o.External, ","), stop: func() {}}
		return env, nil
	}
	zopts := harness.ZooKeeperOptions{TickTime: tick, Log: o.Log}
	switch mode {
	case ZKEnsemble:
		e, err := harness.StartEnsemble(ctx, 3, zopts)
		if err != nil {
			return nil, err
		}
		return &ZKEnv{Mode: mode, Connect: e.Connect(), Direct: e.Addrs(), TickTime: tick, stop: func() { _ = e.Stop() }}, nil
	case ZKStandalone, ZKRemote:
		z, err := harness.StartZooKeeper(ctx, zopts)
		if err != nil {
			return nil, err
		}
		env := &ZKEnv{Mode: mode, Connect: z.Addr(), Direct: []string{z.Addr()}, TickTime: tick, stop: func() { _ = z.Stop() }}
		if mode == ZKRemote {
			p, err := StartLatencyProxy(z.Addr(), o.Latency, o.Jitter)
			if err != nil {
				_ = z.Stop()
				return nil, err
			}
			env.Connect = p.Addr()
			env.Proxy = fmt.Sprintf("toxiproxy latency %v ± %v one way, both directions", o.Latency, o.Jitter)
			env.stop = func() { p.Stop(); _ = z.Stop() }
		}
		return env, nil
	}
	return nil, fmt.Errorf("zk mode %q: want standalone, ensemble or remote", mode)
}

// Stop stops everything StartZK started.
func (e *ZKEnv) Stop() { e.stop() }

// Version asks the first reachable server for its version with srvr.
func (e *ZKEnv) Version(ctx context.Context) string {
	for _, a := range e.Direct {
		if _, v, _ := harness.ZooKeeperStat(ctx, a); v != "" {
			return v
		}
	}
	return "unknown"
}

// LatencyProxy is an in-process toxiproxy proxy that delays both
// directions.
type LatencyProxy struct {
	p *toxiproxy.Proxy
}

// StartLatencyProxy listens on a free loopback port and forwards to
// upstream, adding latency ± jitter to every chunk in each direction.
func StartLatencyProxy(upstream string, latency, jitter time.Duration) (*LatencyProxy, error) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "zookeeper", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("latency proxy: %w", err)
	}
	for _, dir := range []string{"upstream", "downstream"} {
		spec := fmt.Sprintf(`{"name":"latency_%s","type":"latency","stream":%q,"toxicity":1,"attributes":{"latency":%d,"jitter":%d}}`,
			dir, dir, latency.Milliseconds(), jitter.Milliseconds())
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(spec)); err != nil {
			p.Stop()
			return nil, fmt.Errorf("latency proxy: add %s toxic: %w", dir, err)
		}
	}
	return &LatencyProxy{p: p}, nil
}

// Addr is the proxy's listening address.
func (l *LatencyProxy) Addr() string { return l.p.Listen }

// Stop closes the listener and every proxied connection.
func (l *LatencyProxy) Stop() { l.p.Stop() }

// zkLogger captures go-zookeeper's log lines: the negotiated session
// timeout is only reported there ("authenticated: id=..., timeout=2000").
type zkLogger struct {
	mu      sync.Mutex
	timeout time.Duration
}

var authRE = regexp.MustCompile(`authenticated: id=\d+, timeout=(\d+)`)

func (l *zkLogger) Printf(format string, args ...any) {
	m := authRE.FindStringSubmatch(fmt.Sprintf(format, args...))
	if m == nil {
		return
	}
	ms, _ := strconv.Atoi(m[1])
	l.mu.Lock()
	l.timeout = time.Duration(ms) * time.Millisecond
	l.mu.Unlock()
}

func (l *zkLogger) negotiated() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.timeout
}

// DialZK connects to connect with the given session timeout and waits
// until the session is established. It returns the connection and the
// session timeout the server granted (0 if it could not be read).
func DialZK(ctx context.Context, connect string, timeout time.Duration) (*zk.Conn, time.Duration, error) {
	lg := &zkLogger{}
	conn, events, err := zk.Connect(strings.Split(connect, ","), timeout, zk.WithLogger(lg))
	if err != nil {
		return nil, 0, fmt.Errorf("zookeeper %s: %w", connect, err)
	}
	go func() {
		for range events { // drained for the life of the connection
		}
	}()
	err = harness.WaitFor(ctx, 5*time.Millisecond, func() error {
		if conn.State() != zk.StateHasSession {
			return fmt.Errorf("state %v", conn.State())
		}
		return nil
	})
	if err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("zookeeper %s: no session: %w", connect, err)
	}
	// The log line is printed right after the state changes.
	_ = harness.WaitFor(ctx, time.Millisecond, func() error {
		if lg.negotiated() == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	return conn, lg.negotiated(), nil
}

// NegotiatedTimeout opens a session that asks for timeout, as kvserver
// does, and returns what the server granted.
func NegotiatedTimeout(ctx context.Context, connect string, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, got, err := DialZK(ctx, connect, timeout)
	if err != nil {
		return 0, err
	}
	conn.Close()
	return got, nil
}

// ZKRoundTrip is the median of n Exists calls on conn.
func ZKRoundTrip(conn *zk.Conn, n int) (time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if _, _, err := conn.Exists("/"); err != nil {
			return 0, fmt.Errorf("zookeeper round trip: %w", err)
		}
		ds = append(ds, time.Since(t))
	}
	return Median(ds), nil
}

// probePath is the persistent znode ZKWriteRoundTrip writes to.
const probePath = "/zkv-bench-probe"

// ZKWriteRoundTrip is the median of n SetData calls on a persistent
// probe znode (created if missing).
func ZKWriteRoundTrip(conn *zk.Conn, n int) (time.Duration, error) {
	if _, err := conn.Create(probePath, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return 0, fmt.Errorf("zookeeper write round trip: %w", err)
	}
	ds := make([]time.Duration, 0, n)
	for i := range n {
		t := time.Now()
		if _, err := conn.Set(probePath, []byte(strconv.Itoa(i)), -1); err != nil {
			return 0, fmt.Errorf("zookeeper write round trip: %w", err)
		}
		ds = append(ds, time.Since(t))
	}
	return Median(ds), nil
}
