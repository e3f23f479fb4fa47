package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrZooKeeperMissing is returned (wrapped) by StartZooKeeper and
// StartEnsemble when the ZooKeeper jar or the java binary cannot be found.
var ErrZooKeeperMissing = errors.New("ZooKeeper is not installed (install it with: apt-get install -y zookeeper)")

// Locations of ZooKeeper and its optional log binding in Debian's packages,
// and the environment variables that override them.
const (
	// DefaultZooKeeperJar is the jar of Debian's zookeeper package. Its
	// manifest puts the jars it depends on onto the class path.
	DefaultZooKeeperJar = "/usr/share/java/zookeeper.jar"
	// SLF4JSimpleJar is added to the class path when it exists, so that
	// ZooKeeper's log goes to stderr instead of nowhere.
	SLF4JSimpleJar = "/usr/share/java/slf4j-simple.jar"
	// EnvJava names the java binary to use instead of "java" on PATH.
	EnvJava = "ZKV_JAVA"
	// EnvZooKeeperJar names the ZooKeeper jar to use instead of
	// DefaultZooKeeperJar.
	EnvZooKeeperJar = "ZKV_ZOOKEEPER_JAR"
)

// DefaultTickTime is the ZooKeeper tick used when ZooKeeperOptions.TickTime
// is zero. It is a tenth of ZooKeeper's own default, so that sessions can
// expire and elections finish quickly in tests.
const DefaultTickTime = 200 * time.Millisecond

// startAttempts is how often a start is tried with fresh ports when the
// ports chosen by FreePort were taken by someone else in the meantime.
const startAttempts = 3

// ZooKeeperOptions configures StartZooKeeper and StartEnsemble.
type ZooKeeperOptions struct {
	// Dir holds zoo.cfg, the data directory and the log. "" means a new
	// temporary directory, removed by Stop. A given directory is created if
	// needed and never removed.
	Dir string
	// TickTime is ZooKeeper's tickTime; 0 means DefaultTickTime. Session
	// timeouts are bounded below by 2 ticks; the upper bound is at least
	// 60 s.
	TickTime time.Duration
	// Log receives ZooKeeper's stdout and stderr. nil means the file
	// zookeeper.log in the server's directory. In an ensemble every line is
	// prefixed with the member's name ("zk1: ").
	Log io.Writer
}

// ZooKeeper is a ZooKeeper server run as a child java process, either
// standalone (StartZooKeeper) or as a member of an Ensemble. Its methods
// are safe for concurrent use, except that lifecycle calls (Stop, Kill,
// Restart) are meant to come from one goroutine at a time.
type ZooKeeper struct {
	name     string // "zookeeper" or "zkN"
	dir      string
	madeDir  bool // remove dir on Stop
	cfgPath  string
	logPath  string // "" when the log goes to a writer
	log      io.Writer
	port     int
	ensemble bool // expect Mode leader/follower instead of standalone
	java     []string

	life    sync.Mutex // serialises Stop, Kill and Restart
	mu      sync.Mutex
	p       *proc
	removed bool // Stop removed dir
}

// StartZooKeeper starts a standalone ZooKeeper server on a free port of
// 127.0.0.1 and returns once it answers srvr with "Mode: standalone". If
// the server cannot be started or does not get ready before ctx ends, the
// process is killed, the temporary directory (if any) removed and an error
// with the tail of its log returned. A missing installation gives an error
// that wraps ErrZooKeeperMissing.
func StartZooKeeper(ctx context.Context, opts ZooKeeperOptions) (*ZooKeeper, error) {
	java, err := javaCommand()
	if err != nil {
		return nil, err
	}
	dir, madeDir, err := prepareDir(opts.Dir, "zkv-zookeeper-*")
	if err != nil {
		return nil, err
	}
	z := &ZooKeeper{
		name:    "zookeeper",
		dir:     dir,
		madeDir: madeDir,
		cfgPath: filepath.Join(dir, "zoo.cfg"),
		log:     opts.Log,
		java:    java,
	}
	if opts.Log == nil {
		z.logPath = filepath.Join(dir, "zookeeper.log")
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		z.removeDir()
		return nil, fmt.Errorf("zookeeper: %w", err)
	}
	for attempt := 1; ; attempt++ {
		z.port, err = FreePort()
		if err != nil {
			z.removeDir()
			return nil, fmt.Errorf("zookeeper: %w", err)
		}
		cfg := zooCfg(opts.TickTime, dataDir, z.port, nil)
		if err := os.WriteFile(z.cfgPath, []byte(cfg), 0o644); err != nil {
			z.removeDir()
			return nil, fmt.Errorf("zookeeper: write zoo.cfg: %w", err)
		}
		err = z.start(ctx)
		if err == nil {
			return z, nil
		}
		if !errors.Is(err, errAddrInUse) || attempt == startAttempts {
			z.removeDir()
			return nil, err
		}
	}
}

// javaCommand returns the java binary and the arguments that run
// QuorumPeerMain, or an error wrapping ErrZooKeeperMissing.
func javaCommand() ([]string, error) {
	javaName := os.Getenv(EnvJava)
	if javaName == "" {
		javaName = "java"
	}
	java, err := exec.LookPath(javaName)
	if err != nil {
		return nil, fmt.Errorf("%w: java binary %q: %w", ErrZooKeeperMissing, javaName, err)
	}
	jar := os.Getenv(EnvZooKeeperJar)
	if jar == "" {
		jar = DefaultZooKeeperJar
	}
	if _, err := os.Stat(jar); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrZooKeeperMissing, err)
	}
	cp := jar
	if _, err := os.Stat(SLF4JSimpleJar); err == nil {
		cp += string(os.PathListSeparator) + SLF4JSimpleJar
	}
	return []string{
		java,
		"-XX:+UseSerialGC",
		"-XX:TieredStopAtLevel=1",
		"-Xshare:auto",
		"-XX:-UsePerfData", // no hsperfdata files left behind by SIGKILL
		"-Dzookeeper.admin.enableServer=false",
		"-Dorg.slf4j.simpleLogger.showDateTime=true",
		"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
		"-cp", cp,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain",
	}, nil
}

// prepareDir returns dir, creating it if needed, or a new temporary
// directory when dir is "" (madeDir true).
func prepareDir(dir, pattern string) (string, bool, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", pattern)
		if err != nil {
			return "", false, fmt.Errorf("create temp dir: %w", err)
		}
		return d, true, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("create dir: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false, fmt.Errorf("create dir: %w", err)
	}
	return abs, false, nil
}

// quorumMember is one server line of an ensemble's zoo.cfg.
type quorumMember struct {
	id                                 int
	peerPort, electionPort, clientPort int
}

// zooCfg renders a zoo.cfg. Without members it configures a standalone
// server on clientPort; with members the client port comes from each
// member's server line.
func zooCfg(tick time.Duration, dataDir string, clientPort int, members []quorumMember) string {
	if tick <= 0 {
		tick = DefaultTickTime
	}
	tickMS := max(int(tick/time.Millisecond), 1)
	var b strings.Builder
	fmt.Fprintf(&b, "tickTime=%d\n", tickMS)
	b.WriteString("initLimit=10\nsyncLimit=5\n")
	fmt.Fprintf(&b, "dataDir=%s\n", dataDir)
	if len(members) == 0 {
		fmt.Fprintf(&b, "clientPort=%d\nclientPortAddress=127.0.0.1\n", clientPort)
	}
	b.WriteString("admin.enableServer=false\n")
	b.WriteString("4lw.commands.whitelist=srvr,ruok,mntr,stat\n")
	fmt.Fprintf(&b, "maxSessionTimeout=%d\n", max(60000, 20*tickMS))
	// The transaction log is preallocated in 64 MiB steps by default.
	b.WriteString("preAllocSize=1024\n")
	for _, m := range members {
		fmt.Fprintf(&b, "server.%d=127.0.0.1:%d:%d;127.0.0.1:%d\n", m.id, m.peerPort, m.electionPort, m.clientPort)
	}
	return b.String()
}

// start launches the java process and waits until it is ready. On failure
// the process is killed; an error caused by a taken port wraps
// errAddrInUse.
func (z *ZooKeeper) start(ctx context.Context) error {
	p, err := z.launch()
	if err != nil {
		return err
	}
	if err := z.waitProcReady(ctx, p); err != nil {
		_ = p.kill()
		return z.failed(p, err)
	}
	return nil
}

// launch starts the java process without waiting for readiness.
func (z *ZooKeeper) launch() (*proc, error) {
	p, err := startProc(procSpec{
		path:    z.java[0],
		args:    append(z.java[1:len(z.java):len(z.java)], z.cfgPath),
		dir:     z.dir,
		logPath: z.logPath,
		log:     z.log,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", z.name, err)
	}
	z.mu.Lock()
	z.p = p
	z.mu.Unlock()
	return p, nil
}

// failed decorates a start error with the log tail, marking bind failures.
func (z *ZooKeeper) failed(p *proc, err error) error {
	tail := p.logTail(DefaultTailLines)
	if looksLikeAddrInUse(tail) {
		err = fmt.Errorf("%w: %w", errAddrInUse, err)
	}
	return withTail(fmt.Errorf("%s on %s (pid %d, dir %s): %w", z.name, z.Addr(), p.pid(), z.dir, err), tail)
}

// waitProcReady polls srvr until the server reports the expected mode, the
// process exits, or ctx ends.
func (z *ZooKeeper) waitProcReady(ctx context.Context, p *proc) error {
	ticker := time.NewTicker(DefaultPollInterval)
	defer ticker.Stop()
	last := errors.New("not probed yet")
	for {
		if p.exited() {
			return fmt.Errorf("exited before it was ready: %w", p.err)
		}
		if err := z.probe(ctx); err == nil {
			return nil
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last probe: %w)", ctx.Err(), last)
		case <-p.done:
		case <-ticker.C:
		}
	}
}

// probe asks for srvr once and checks the mode.
func (z *ZooKeeper) probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	mode, err := z.Mode(pctx)
	if err != nil {
		return err
	}
	if z.ensemble {
		if mode == "leader" || mode == "follower" {
			return nil
		}
	} else if mode == "standalone" {
		return nil
	}
	return fmt.Errorf("mode is %q", mode)
}

// Name is "zookeeper" for a standalone server and "zkN" for member N of an
// ensemble (N is its myid).
func (z *ZooKeeper) Name() string { return z.name }

// Addr is the client address, "127.0.0.1:port".
func (z *ZooKeeper) Addr() string { return net.JoinHostPort(z.Host(), strconv.Itoa(z.port)) }

// Host is the client host, always "127.0.0.1".
func (z *ZooKeeper) Host() string { return "127.0.0.1" }

// Port is the client port. It stays the same across Restart.
func (z *ZooKeeper) Port() int { return z.port }

// Dir is the directory holding zoo.cfg, the data directory and, unless a
// Log writer was given, zookeeper.log.
func (z *ZooKeeper) Dir() string { return z.dir }

// LogPath is the path of the log file, or "" when the log goes to the
// writer given in ZooKeeperOptions.Log.
func (z *ZooKeeper) LogPath() string { return z.logPath }

// LogTail returns the last n lines of the log of the current (or last)
// process; n <= 0 means DefaultTailLines.
func (z *ZooKeeper) LogTail(n int) string {
	if p := z.current(); p != nil {
		return p.logTail(n)
	}
	return TailFile(z.logPath, n)
}

// PID is the process ID of the current or, after Kill or Stop, the last
// java process.
func (z *ZooKeeper) PID() int {
	if p := z.current(); p != nil {
		return p.pid()
	}
	return 0
}

// Running reports whether the java process is running.
func (z *ZooKeeper) Running() bool {
	p := z.current()
	return p != nil && !p.exited()
}

// Exited returns a channel closed when the current java process has exited
// and been reaped. After Restart it is a new channel.
func (z *ZooKeeper) Exited() <-chan struct{} {
	return z.current().done
}

func (z *ZooKeeper) current() *proc {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.p
}

// Mode asks the server for srvr and returns its Mode line: "standalone",
// "leader", "follower" or "observer".
func (z *ZooKeeper) Mode(ctx context.Context) (string, error) {
	mode, _, err := ZooKeeperStat(ctx, z.Addr())
	return mode, err
}

// WaitReady polls srvr until the server reports "standalone" (or, for an
// ensemble member, "leader" or "follower"), the process exits, or ctx
// ends.
func (z *ZooKeeper) WaitReady(ctx context.Context) error {
	p := z.current()
	if err := z.waitProcReady(ctx, p); err != nil {
		return z.failed(p, err)
	}
	return nil
}

// Kill sends SIGKILL to the java process and waits until it is reaped. The
// data directory is kept, so Restart brings the same data back.
func (z *ZooKeeper) Kill() error {
	z.life.Lock()
	defer z.life.Unlock()
	if p := z.current(); p != nil {
		if err := p.kill(); err != nil {
			return fmt.Errorf("%s: %w", z.name, err)
		}
	}
	return nil
}

// Stop sends SIGTERM, waits for the exit and sends SIGKILL if the server is
// still running after DefaultStopGrace. It then removes the directory if
// StartZooKeeper created it (never for an ensemble member: Ensemble.Stop
// removes the ensemble's directory). Stop may be called more than once and after
// Kill; an earlier exit caused by a signal is not an error, any other
// earlier exit is reported.
func (z *ZooKeeper) Stop() error {
	z.life.Lock()
	defer z.life.Unlock()
	p := z.current()
	var errs []error
	if p != nil {
		if err := p.terminate(context.Background(), DefaultStopGrace); err != nil && !exitedByOurSignal(err) {
			errs = append(errs, withTail(fmt.Errorf("%s (pid %d): %w", z.name, p.pid(), err), p.logTail(DefaultTailLines)))
		}
	}
	if z.madeDir {
		z.mu.Lock()
		z.removed = true
		z.mu.Unlock()
	}
	if err := z.removeDir(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeDir removes the directory if this package created it.
func (z *ZooKeeper) removeDir() error {
	if !z.madeDir {
		return nil
	}
	if err := os.RemoveAll(z.dir); err != nil {
		return fmt.Errorf("%s: remove %s: %w", z.name, z.dir, err)
	}
	return nil
}

// Restart starts the server again on the same port with the same directory
// and configuration, and waits until it is ready, as StartZooKeeper does. A
// running server is stopped first (SIGTERM, then SIGKILL after
// DefaultStopGrace). A restarted ensemble member is ready once it has
// rejoined the quorum, which needs a majority of members running. Restart
// works after Kill, and after Stop unless Stop removed a temporary
// directory made by StartZooKeeper.
func (z *ZooKeeper) Restart(ctx context.Context) error {
	z.life.Lock()
	defer z.life.Unlock()
	z.mu.Lock()
	removed, old := z.removed, z.p
	z.mu.Unlock()
	if removed {
		return fmt.Errorf("%s: restart after Stop removed its directory %s", z.name, z.dir)
	}
	if old != nil && !old.exited() {
		_ = old.terminate(ctx, DefaultStopGrace)
	}
	return z.start(ctx)
}

// ZooKeeperStat asks the ZooKeeper server at addr (host:port) with the
// srvr command for its mode ("standalone", "leader", "follower" or
// "observer") and its version ("3.8.4-9316c2a…"; Debian's build, which
// prints "3.8.0-${mvngit.commit.id}", gives "3.8.0"). A server that answers
// without a mode (it is not serving, such as a member without quorum) is an
// error, but the version is returned when it told one. ctx's deadline is
// the timeout; without one it is 5 s.
//
// go-zookeeper's zk.FLWSrvr would do this, but its pattern for the answer
// wants the "built on 02/20/2014 09:09 GMT" dates of ZooKeeper 3.4: it
// fails on every answer of the ZooKeeper 3.8 that Debian and the official
// image ship ("built on 2024-12-29 17:54 UTC"), so the answer is read here.
func ZooKeeperStat(ctx context.Context, addr string) (mode, version string, err error) {
	out, err := fourLetter(ctx, addr, "srvr")
	if err != nil {
		return "", "", err
	}
	mode, version, err = parseSrvr(out)
	if err != nil {
		return "", version, fmt.Errorf("srvr %s: %w", addr, err)
	}
	return mode, version, nil
}

// parseSrvr extracts the mode and the version from a srvr answer.
func parseSrvr(srvr string) (mode, version string, err error) {
	found := false
	for line := range strings.Lines(srvr) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "Zookeeper version:"); ok {
			v, _, _ = strings.Cut(strings.TrimSpace(v), ",")
			// Debian's build leaves the git placeholder in: "3.8.0-${mvngit.commit.id}".
			v, _, _ = strings.Cut(v, "-${")
			version = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Mode:"); ok {
			mode, found = strings.TrimSpace(v), true
		}
	}
	if !found {
		return "", version, fmt.Errorf("answer has no Mode (not serving?): %q", strings.TrimSpace(srvr))
	}
	return mode, version, nil
}

// fourLetter sends one of ZooKeeper's four-letter commands to addr and
// returns the whole answer. ctx's deadline is the timeout; without one it
// is 5 s.
func fourLetter(ctx context.Context, addr, cmd string) (string, error) {
	if len(cmd) != 4 {
		return "", fmt.Errorf("four-letter command %q: must be four letters", cmd)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", cmd, addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", fmt.Errorf("%s %s: %w", cmd, addr, err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return "", fmt.Errorf("%s %s: %w", cmd, addr, err)
	}
	return string(out), nil
}
