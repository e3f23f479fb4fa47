package bench

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkvstore/zkv/internal/harness"
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
