package harness

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// NodeOptions configures a kvserver process started by StartNode. Empty
// fields leave kvserver's own flag defaults in place unless said otherwise.
type NodeOptions struct {
	// ID is the node ID (--id). Required.
	ID string
	// ZooKeeper is the connect string, host:port[,host:port...]
	// (--zookeeper).
	ZooKeeper string
	// NATSURL is the NATS server URL (--nats).
	NATSURL string
	// SessionTimeout is the ZooKeeper session timeout (--session-timeout);
	// 0 means kvserver's default.
	SessionTimeout time.Duration
	// ElectionPath is the election znode path (--election-path); "" means
	// kvserver's default.
	ElectionPath string
	// SubjectPrefix is the NATS subject prefix (--subject-prefix); "" means
	// kvserver's default.
	SubjectPrefix string
	// Host is the HTTP host (--host); "" means 127.0.0.1.
	Host string
	// Port is the HTTP port (--port); 0 means a free port, chosen once and
	// kept across Restart.
	Port int
	// LogLevel is debug, info, warn or error (--log-level); "" means
	// kvserver's default.
	LogLevel string
	// Log receives the process's stdout and stderr. When nil, they go to
	// the file <LogDir>/<ID>.log, or, when LogDir is "" too, only to an
	// in-memory buffer of the last 64 KiB that LogTail reads.
	Log io.Writer
	// LogDir is the directory of the log file when Log is nil. It is
	// created if needed.
	LogDir string
	// Args are extra command-line arguments, appended after the flags
	// above.
	Args []string
	// TLS, when set, is the client TLS config for an HTTP API served over
	// TLS (kvserver --http-tls-cert, given in Args): URL is then https and
	// the health probes use it.
	TLS *tls.Config
	// Env are extra environment variables (KEY=value) added to this
	// process's environment, e.g. GORACE=halt_on_error=1.
	Env []string
}

// Node is a running kvserver process. Its methods are safe for concurrent
// use, except that lifecycle calls (Stop, Kill, Restart) are meant to come
// from one goroutine at a time.
type Node struct {
	bin     string
	opts    NodeOptions // with Host and Port filled in
	logPath string

	life sync.Mutex // serialises Stop, Kill and Restart
	mu   sync.Mutex
	p    *proc
}

// StartNode starts kvserver from the binary bin and returns once GET
// /healthz answers 200. If the process exits first, or ctx ends first, the
// process is killed and the error carries the tail of its log. With Port 0
// a free port is chosen; if kvserver then fails because another process
// took that port, StartNode tries again with a new one.
func StartNode(ctx context.Context, bin string, opts NodeOptions) (*Node, error) {
	if bin == "" {
		return nil, errors.New("start node: no kvserver binary (is cmd/kvserver built?)")
	}
	if opts.ID == "" {
		return nil, errors.New("start node: NodeOptions.ID is empty")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	n := &Node{bin: bin, opts: opts}
	if opts.Log == nil && opts.LogDir != "" {
		if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
			return nil, fmt.Errorf("node %s: %w", opts.ID, err)
		}
		n.logPath = filepath.Join(opts.LogDir, opts.ID+".log")
	}
	pickPort := opts.Port == 0
	for attempt := 1; ; attempt++ {
		if pickPort {
			port, err := FreePort()
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", opts.ID, err)
			}
			n.opts.Port = port
		}
		err := n.start(ctx)
		if err == nil {
			return n, nil
		}
		if !pickPort || !errors.Is(err, errAddrInUse) || attempt == startAttempts {
			return nil, err
		}
	}
}

// args renders the command line flags of the node.
func (n *Node) args() []string {
	o := n.opts
	args := []string{
		"--id", o.ID,
		"--host", o.Host,
		"--port", strconv.Itoa(o.Port),
	}
	if o.ZooKeeper != "" {
		args = append(args, "--zookeeper", o.ZooKeeper)
	}
	if o.NATSURL != "" {
		args = append(args, "--nats", o.NATSURL)
	}
	if o.SessionTimeout > 0 {
		args = append(args, "--session-timeout", o.SessionTimeout.String())
	}
	if o.ElectionPath != "" {
		args = append(args, "--election-path", o.ElectionPath)
	}
	if o.SubjectPrefix != "" {
		args = append(args, "--subject-prefix", o.SubjectPrefix)
	}
	if o.LogLevel != "" {
		args = append(args, "--log-level", o.LogLevel)
	}
	return append(args, o.Args...)
}

// start launches the process and waits for /healthz. On failure the process
// is killed; a failure to bind the port wraps errAddrInUse.
func (n *Node) start(ctx context.Context) error {
	p, err := startProc(procSpec{
		path:    n.bin,
		args:    n.args(),
		env:     n.opts.Env,
		logPath: n.logPath,
		log:     n.opts.Log,
	})
	if err != nil {
		return fmt.Errorf("node %s: %w", n.opts.ID, err)
	}
	n.mu.Lock()
	n.p = p
	n.mu.Unlock()
	if err := n.waitEndpoint(ctx, p, "/healthz"); err != nil {
		_ = p.kill()
		tail := p.logTail(DefaultTailLines)
		if looksLikeAddrInUse(tail) {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return withTail(fmt.Errorf("node %s (pid %d, %s): %w", n.opts.ID, p.pid(), n.HTTPAddr(), err), tail)
	}
	return nil
}

// httpClient is used for the health probes. It keeps no idle connections,
// so that probes never reuse a connection to an earlier incarnation of a
// node, and it never goes through a proxy.
var httpClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

// waitEndpoint polls GET path until it answers 200, p exits or ctx ends.
func (n *Node) waitEndpoint(ctx context.Context, p *proc, path string) error {
	ticker := time.NewTicker(DefaultPollInterval)
	defer ticker.Stop()
	last := errors.New("not probed yet")
	for {
		if p.exited() {
			return fmt.Errorf("exited while waiting for %s: %w", path, exitDescription(p.err))
		}
		err := n.get(ctx, path)
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last probe: %w)", path, ctx.Err(), last)
		case <-p.done:
		case <-ticker.C:
		}
	}
}

// exitDescription turns a nil exit error into a readable one.
func exitDescription(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// get does one GET of path, with a one second timeout, and expects 200.
func (n *Node) get(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+path, nil)
	if err != nil {
		return err
	}
	client := httpClient
	if n.opts.TLS != nil {
		client = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: n.opts.TLS}}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %q", path, resp.Status, body)
	}
	return nil
}

func (n *Node) current() *proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p
}

// ID is the node ID.
func (n *Node) ID() string { return n.opts.ID }

// CommandLine is the kvserver binary and the flags each process of the
// node starts with (NodeOptions.Env not included): what restarts it by
// hand.
func (n *Node) CommandLine() []string { return append([]string{n.bin}, n.args()...) }

// Options returns the options the node runs with, with Host and Port
// filled in.
func (n *Node) Options() NodeOptions { return n.opts }

// HTTPAddr is the HTTP address, "host:port".
func (n *Node) HTTPAddr() string {
	return net.JoinHostPort(n.opts.Host, strconv.Itoa(n.opts.Port))
}

// URL is the HTTP base URL, "http://host:port", or "https://host:port"
// with NodeOptions.TLS.
func (n *Node) URL() string {
	if n.opts.TLS != nil {
		return "https://" + n.HTTPAddr()
	}
	return "http://" + n.HTTPAddr()
}

// PID is the process ID of the current or, after it exited, the last
// process.
func (n *Node) PID() int { return n.current().pid() }

// LogPath is the log file, or "" when the output goes to NodeOptions.Log or
// only to memory.
func (n *Node) LogPath() string { return n.logPath }

// LogTail returns the last n lines of the node's output; lines <= 0 means
// DefaultTailLines. With a log file it reads the file, which holds every
// incarnation of the node; otherwise it reads the in-memory copy of the
// current incarnation.
func (n *Node) LogTail(lines int) string { return n.current().logTail(lines) }

// Signal sends sig to the process by PID. Signalling an exited process is
// not an error.
func (n *Node) Signal(sig os.Signal) error {
	if err := n.current().signal(sig); err != nil {
		return fmt.Errorf("node %s: %w", n.opts.ID, err)
	}
	return nil
}

// Pause stops the process with SIGSTOP; it keeps its sockets but does
// nothing until Resume. The signal takes effect asynchronously, so on Linux
// Pause waits (by polling /proc/<pid>/stat, at most a second) until the
// kernel reports the process stopped, so that a caller can rely on it
// being unresponsive once Pause returns.
func (n *Node) Pause() error {
	p := n.current()
	if err := n.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	return waitState(p, 'T', "stopped")
}

// Resume continues a paused process with SIGCONT and, on Linux, waits until
// the kernel no longer reports it stopped.
func (n *Node) Resume() error {
	p := n.current()
	if err := n.Signal(syscall.SIGCONT); err != nil {
		return err
	}
	return waitState(p, 0, "running")
}

// waitState polls the state of p until it is want (0: anything but
// stopped), p exits, or a second has passed. Without /proc it returns at
// once.
func waitState(p *proc, want byte, what string) error {
	if !stateKnown {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := WaitFor(ctx, time.Millisecond, func() error {
		if p.exited() {
			return nil
		}
		st, err := procState(p.pid())
		if err != nil {
			return err
		}
		if (want == 0 && st != 'T' && st != 't') || st == want {
			return nil
		}
		return fmt.Errorf("state %c", st)
	})
	if err != nil {
		return fmt.Errorf("pid %d not %s: %w", p.pid(), what, err)
	}
	return nil
}

// Exited returns a channel closed when the current process has exited and
// been reaped. After Restart it is a new channel.
func (n *Node) Exited() <-chan struct{} { return n.current().done }

// Running reports whether the current process has not exited yet.
func (n *Node) Running() bool { return !n.current().exited() }

// ExitErr is the exit error of the current process once it has exited (nil
// for exit status 0), and nil while it runs; use Exited or Running to tell
// the two nil cases apart.
func (n *Node) ExitErr() error { return n.current().exitErr() }

// Kill sends SIGKILL and waits until the process is reaped.
func (n *Node) Kill() error {
	n.life.Lock()
	defer n.life.Unlock()
	if err := n.current().kill(); err != nil {
		return fmt.Errorf("node %s: %w", n.opts.ID, err)
	}
	return nil
}

// Stop sends SIGTERM (and SIGCONT, in case the node is paused) and waits
// for the exit. It returns the exit error: nil for exit status 0, an
// *exec.ExitError for a non-zero status or death by signal. If ctx ends
// first it sends SIGKILL, waits for the exit and returns an error wrapping
// ctx's error. For a process that has already exited it returns its exit
// error.
func (n *Node) Stop(ctx context.Context) error {
	n.life.Lock()
	defer n.life.Unlock()
	p := n.current()
	// No grace timer: ctx alone bounds the wait.
	if err := p.terminate(ctx, time.Duration(1<<63-1)); err != nil {
		return fmt.Errorf("node %s (pid %d): %w", n.opts.ID, p.pid(), err)
	}
	return nil
}

// WaitHealthy polls GET /healthz until it answers 200, the process exits or
// ctx ends.
func (n *Node) WaitHealthy(ctx context.Context) error {
	return n.wait(ctx, "/healthz")
}

// WaitReady polls GET /readyz (200 once the node is connected to ZooKeeper
// and NATS) until it answers 200, the process exits or ctx ends. Errors
// carry the tail of the node's log.
func (n *Node) WaitReady(ctx context.Context) error {
	return n.wait(ctx, "/readyz")
}

func (n *Node) wait(ctx context.Context, path string) error {
	p := n.current()
	if err := n.waitEndpoint(ctx, p, path); err != nil {
		return withTail(fmt.Errorf("node %s (pid %d, %s): %w", n.opts.ID, p.pid(), n.HTTPAddr(), err), p.logTail(DefaultTailLines))
	}
	return nil
}

// Restart starts the node again with the same options and port and waits
// for /healthz, as StartNode does. A running process is stopped first with
// SIGTERM (SIGKILL if ctx ends); its exit status is not checked. The new
// process is a new ZooKeeper session, so its election znode is new too. A
// log file is appended to.
func (n *Node) Restart(ctx context.Context) error {
	n.life.Lock()
	defer n.life.Unlock()
	if p := n.current(); !p.exited() {
		_ = p.terminate(ctx, time.Duration(1<<63-1))
	}
	return n.start(ctx)
}
