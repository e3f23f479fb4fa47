package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Ensemble is a ZooKeeper ensemble of loopback members, each a java
// process with its own directory, myid and ports.
type Ensemble struct {
	dir     string
	madeDir bool
	members []*ZooKeeper
}

// StartEnsemble starts an ensemble of n members (n >= 2; 3 is the usual
// choice) on free ports of 127.0.0.1 and returns once every member answers
// srvr with Mode leader or follower. Member i (1-based) lives in
// <dir>/zk<i> with myid i. If any member cannot be started or the quorum
// does not form before ctx ends, every member is killed, the temporary
// directory (if any) removed and an error with the members' log tails
// returned. A missing installation gives an error that wraps
// ErrZooKeeperMissing.
func StartEnsemble(ctx context.Context, n int, opts ZooKeeperOptions) (*Ensemble, error) {
	if n < 2 {
		return nil, fmt.Errorf("ensemble of %d members: need at least 2 (use StartZooKeeper for one)", n)
	}
	java, err := javaCommand()
	if err != nil {
		return nil, err
	}
	dir, madeDir, err := prepareDir(opts.Dir, "zkv-ensemble-*")
	if err != nil {
		return nil, err
	}
	e := &Ensemble{dir: dir, madeDir: madeDir}
	var mux *LogMux
	if opts.Log != nil {
		mux = NewLogMux(opts.Log)
	}
	for i := 1; i <= n; i++ {
		name := "zk" + strconv.Itoa(i)
		mdir := filepath.Join(dir, name)
		z := &ZooKeeper{
			name:     name,
			dir:      mdir,
			cfgPath:  filepath.Join(mdir, "zoo.cfg"),
			ensemble: true,
			java:     java,
		}
		if mux != nil {
			z.log = mux.Writer(name + ": ")
		} else {
			z.logPath = filepath.Join(mdir, "zookeeper.log")
		}
		dataDir := filepath.Join(mdir, "data")
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			e.removeDir()
			return nil, fmt.Errorf("ensemble: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dataDir, "myid"), []byte(strconv.Itoa(i)+"\n"), 0o644); err != nil {
			e.removeDir()
			return nil, fmt.Errorf("ensemble: write myid: %w", err)
		}
		e.members = append(e.members, z)
	}
	for attempt := 1; ; attempt++ {
		err := e.start(ctx, opts.TickTime)
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, errAddrInUse) || attempt == startAttempts {
			e.removeDir()
			return nil, err
		}
	}
}

// start writes every member's zoo.cfg with fresh ports, launches all
// members and waits for the quorum. On failure every member is killed.
func (e *Ensemble) start(ctx context.Context, tick time.Duration) error {
	ports, err := FreePorts(3 * len(e.members))
	if err != nil {
		return fmt.Errorf("ensemble: %w", err)
	}
	qm := make([]quorumMember, len(e.members))
	for i := range e.members {
		qm[i] = quorumMember{id: i + 1, clientPort: ports[3*i], peerPort: ports[3*i+1], electionPort: ports[3*i+2]}
		e.members[i].port = qm[i].clientPort
	}
	for i, z := range e.members {
		cfg := zooCfg(tick, filepath.Join(z.dir, "data"), qm[i].clientPort, qm)
		if err := os.WriteFile(z.cfgPath, []byte(cfg), 0o644); err != nil {
			return fmt.Errorf("ensemble: write zoo.cfg: %w", err)
		}
	}
	procs := make([]*proc, 0, len(e.members))
	killAll := func() {
		for _, p := range procs {
			_ = p.kill()
		}
	}
	for _, z := range e.members {
		p, err := z.launch()
		if err != nil {
			killAll()
			return fmt.Errorf("ensemble: %w", err)
		}
		procs = append(procs, p)
	}
	if err := e.waitAll(ctx, procs); err != nil {
		killAll()
		return err
	}
	return nil
}

// waitAll polls every member until all report leader or follower. It fails
// as soon as any member exits, or when ctx ends, with every member's log
// tail.
func (e *Ensemble) waitAll(ctx context.Context, procs []*proc) error {
	ready := make([]bool, len(procs))
	last := make([]error, len(procs))
	ticker := time.NewTicker(DefaultPollInterval)
	defer ticker.Stop()
	var cause error
	for cause == nil {
		waiting := 0
		for i, z := range e.members {
			p := procs[i]
			if p.exited() {
				last[i] = fmt.Errorf("exited before it was ready: %w", p.err)
				cause = fmt.Errorf("%s exited", z.name)
				break
			}
			if ready[i] {
				continue
			}
			if last[i] = z.probe(ctx); last[i] == nil {
				ready[i] = true
			} else {
				waiting++
			}
		}
		if cause != nil {
			break
		}
		if waiting == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			cause = ctx.Err()
		case <-ticker.C:
		}
	}
	errs := []error{fmt.Errorf("ensemble: quorum not formed: %w", cause)}
	for i, z := range e.members {
		err := last[i]
		if err == nil {
			err = errors.New("was ready")
		}
		errs = append(errs, z.failed(procs[i], err))
	}
	return errors.Join(errs...)
}

// Members returns the members in myid order (Members()[0] has myid 1).
func (e *Ensemble) Members() []*ZooKeeper { return append([]*ZooKeeper(nil), e.members...) }

// Addrs returns the members' client addresses in myid order.
func (e *Ensemble) Addrs() []string {
	addrs := make([]string, len(e.members))
	for i, z := range e.members {
		addrs[i] = z.Addr()
	}
	return addrs
}

// Connect is the connect string of the ensemble,
// "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3".
func (e *Ensemble) Connect() string { return strings.Join(e.Addrs(), ",") }

// Dir is the directory holding one subdirectory per member.
func (e *Ensemble) Dir() string { return e.dir }

// Leader polls the running members until one of them reports Mode leader,
// and returns it; it fails when ctx ends first.
func (e *Ensemble) Leader(ctx context.Context) (*ZooKeeper, error) {
	var leader *ZooKeeper
	err := WaitFor(ctx, DefaultPollInterval, func() error {
		var errs []error
		for _, z := range e.members {
			if !z.Running() {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			mode, err := z.Mode(pctx)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", z.name, err))
				continue
			}
			if mode == "leader" {
				leader = z
				return nil
			}
		}
		errs = append(errs, errors.New("no member reports Mode: leader"))
		return errors.Join(errs...)
	})
	if err != nil {
		return nil, fmt.Errorf("ensemble leader: %w", err)
	}
	return leader, nil
}

// WaitReady waits until every running member reports Mode leader or
// follower, or ctx ends.
func (e *Ensemble) WaitReady(ctx context.Context) error {
	for _, z := range e.members {
		if !z.Running() {
			continue
		}
		if err := z.WaitReady(ctx); err != nil {
			return fmt.Errorf("ensemble: %w", err)
		}
	}
	return nil
}

// Stop stops every member concurrently (SIGTERM, then SIGKILL after
// DefaultStopGrace) and removes the directory if StartEnsemble created it.
// Members that were killed before are not an error.
func (e *Ensemble) Stop() error {
	errs := make([]error, len(e.members))
	var wg sync.WaitGroup
	for i, z := range e.members {
		wg.Go(func() { errs[i] = z.Stop() })
	}
	wg.Wait()
	return errors.Join(append(errs, e.removeDir())...)
}

func (e *Ensemble) removeDir() error {
	if !e.madeDir {
		return nil
	}
	if err := os.RemoveAll(e.dir); err != nil {
		return fmt.Errorf("ensemble: remove %s: %w", e.dir, err)
	}
	return nil
}
