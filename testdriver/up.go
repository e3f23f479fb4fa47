package testdriver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/testdriver/cluster"

	"github.com/nats-io/nats.go"
)

// DefaultNATSPort is the NATS port Up prefers, so that kvctl and the nats
// CLI find the server without flags.
const DefaultNATSPort = 4222

// UpConfig configures Up.
type UpConfig struct {
	// Local configures the cluster. LogDir, Progress and Logger are set by
	// Up.
	Local cluster.LocalOptions
	// KVCtl is the kvctl path the printed commands use; "" means "kvctl".
	KVCtl string
	// LogRoot is where the log directory is created; "" means
	// DefaultLogRoot.
	LogRoot string
	// Timeout bounds the wait for the first leader; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Ready, if set, is called once the cluster is up, before Up waits for
	// ctx to end.
	Ready func(UpInfo)
	// InsecureHTTP serves the HTTP API as plain HTTP without users;
	// otherwise Up makes a CA, a certificate and two users (UpHTTP) and
	// the servers require them.
	InsecureHTTP bool
}

// UpInfo describes a cluster started by Up.
type UpInfo struct {
	// NATSURL is the NATS server's URL.
	NATSURL string
	// ZooKeeper is the ZooKeeper connect string; ZooKeeperPID is 0 when
	// the ZooKeeper was not started by Up.
	ZooKeeper    string
	ZooKeeperPID int
	// SessionTimeout is the servers' ZooKeeper session timeout.
	SessionTimeout time.Duration
	// Nodes are the kvservers in ID order.
	Nodes []cluster.LocalNode
	// Leader and Epoch are the leader every server reported.
	Leader string
	Epoch  uint64
	// KVCtl is the kvctl path of the commands ("kvctl" if unknown).
	KVCtl string
	// LogDir is the log directory.
	LogDir string
	// NATSCLI is false when the nats CLI is not on PATH.
	NATSCLI bool
	// HTTP describes the secured HTTP API; nil for plain HTTP.
	HTTP *UpHTTP
}

// Command is a shell command to try against the cluster.
type Command struct {
	// Line is the command, ready to paste into a POSIX shell.
	Line string
	// Comment says what it does.
	Comment string
	// Kill is true for the commands that stop a server.
	Kill bool
}

// ZkCli is the ZooKeeper shell of Debian's zookeeper package.
const ZkCli = "/usr/share/zookeeper/bin/zkCli.sh"

// RestartLine is the shell command that starts node n again as up
// started it, appending to its log, in the background.
func RestartLine(n cluster.LocalNode) string {
	words := make([]string, len(n.CommandLine))
	for i, w := range n.CommandLine {
		if i == 0 {
			w = displayPath(w)
		}
		words[i] = shellQuote(w)
	}
	line := strings.Join(words, " ")
	if n.LogPath != "" {
		line += " >> " + shellQuote(displayPath(n.LogPath)) + " 2>&1"
	}
	return line + " &"
}

// follower returns a node other than the leader (the leader if alone).
func (i UpInfo) follower() cluster.LocalNode {
	for _, n := range i.Nodes {
		if n.ID != i.Leader {
			return n
		}
	}
	for _, n := range i.Nodes {
		return n
	}
	return cluster.LocalNode{}
}

// leaderNode returns the leader's cluster.LocalNode.
func (i UpInfo) leaderNode() cluster.LocalNode {
	for _, n := range i.Nodes {
		if n.ID == i.Leader {
			return n
		}
	}
	return cluster.LocalNode{}
}

// Commands returns the commands to try: kvctl, the nats CLI and curl
// against the cluster, then how to kill the leader by PID.
func (i UpInfo) Commands() []Command {
	kvctl := i.KVCtl
	if kvctl == "" {
		kvctl = "kvctl"
	}
	kv := shellQuote(kvctl) + " --nats " + shellQuote(i.NATSURL)
	nats := "nats -s " + shellQuote(i.NATSURL)
	f := i.follower()
	l := i.leaderNode()
	subj := bus.Subjects{}
	read := bus.Encode(bus.ReadRequest{Key: "a"})
	write := bus.Encode(bus.WriteRequest{Key: "a", Value: "1"})
	session := "the session timeout"
	if i.SessionTimeout > 0 {
		session = "the " + i.SessionTimeout.String() + " session timeout"
	}
	return slices.Concat([]Command{
		{Line: kv + " put a 1", Comment: "write a=1; the leader answers"},
		{Line: kv + " get a --node " + f.ID, Comment: "read a from " + f.ID + "'s own copy"},
		{Line: kv + " status", Comment: "every server's role, epoch and leader"},
		{Line: nats + " req " + subj.Write() + " " + shellQuote(string(write)), Comment: "the same write over plain NATS"},
		{Line: nats + " req " + subj.NodeRead(f.ID) + " " + shellQuote(string(read)), Comment: "the same read over plain NATS"},
	}, i.httpCommands(kvctl, f), []Command{
		{Line: ZkCli + " -server " + shellQuote(i.ZooKeeper) + " ls /election", Comment: "the election znodes, one per server (get /leader: who leads)"},
		{Line: fmt.Sprintf("kill -9 %d", l.PID), Comment: fmt.Sprintf("crash the leader %s: another server takes over after %s", l.ID, session), Kill: true},
		{Line: fmt.Sprintf("kill %d", l.PID), Comment: fmt.Sprintf("or stop %s cleanly: it resigns and hands over at once", l.ID), Kill: true},
	})
}

// httpCommands are the HTTP commands to try on node f: plain curl, or, with
// a secured API, curl and kvctl with the CA and the users' secrets read
// from their files.
func (i UpInfo) httpCommands(kvctl string, f cluster.LocalNode) []Command {
	if i.HTTP == nil {
		return []Command{
			{Line: "curl -X PUT --data-binary 1 http://" + f.HTTPAddr + "/v1/kv/a", Comment: "write over HTTP; " + f.ID + " forwards it to the leader"},
			{Line: "curl http://" + f.HTTPAddr + "/v1/kv/a", Comment: "read over HTTP from " + f.ID},
		}
	}
	h := i.HTTP
	url := "https://" + f.HTTPAddr
	ca := shellQuote(displayPath(h.CA))
	password := `"$(cat ` + shellQuote(displayPath(h.WriterPasswordFile)) + `)"`
	bearer := `"Authorization: Bearer $(cat ` + shellQuote(displayPath(h.ReaderTokenFile)) + `)"`
	return []Command{
		{Line: "curl -sS --fail-with-body --cacert " + ca + " -u " + h.Writer + ":" + password + " -X PUT --data-binary 1 " + url + "/v1/kv/a",
			Comment: "write over HTTPS as " + h.Writer + " (readwrite); " + f.ID + " forwards it to the leader"},
		{Line: "curl -sS --fail-with-body --cacert " + ca + " -H " + bearer + " " + url + "/v1/kv/a",
			Comment: "read over HTTPS from " + f.ID + " with " + h.Reader + "'s token (read only: its PUT gets 403)"},
		{Line: shellQuote(kvctl) + " --http " + url + " --http-ca " + ca + " --http-user " + h.Writer + " --http-password " + password + " get a",
			Comment: "the same read with kvctl over HTTPS"},
	}
}

// WriteTo prints the cluster's addresses, its servers and the commands to
// try.
func (i UpInfo) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nzkv is up: %s, leader %s (epoch %d).\n\n", plural(len(i.Nodes), "server"), i.Leader, i.Epoch)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  NATS\t%s\n", i.NATSURL)
	zk := i.ZooKeeper
	if i.ZooKeeperPID > 0 {
		zk += fmt.Sprintf(" (pid %d)", i.ZooKeeperPID)
	}
	fmt.Fprintf(tw, "  ZooKeeper\t%s, session timeout %s\n", zk, i.SessionTimeout)
	fmt.Fprintf(tw, "  logs\t%s\n", i.LogDir)
	_ = tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVER\tROLE\tPID\tSTATUS PAGE AND HTTP API")
	scheme := "http://"
	if i.HTTP != nil {
		scheme = "https://"
	}
	for _, n := range i.Nodes {
		role := "follower"
		if n.ID == i.Leader {
			role = "leader"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s%s/\n", n.ID, role, n.PID, scheme, n.HTTPAddr)
	}
	if h := i.HTTP; h != nil {
		fmt.Fprintf(tw, "\n  HTTP is TLS with users (kvserver --http-tls-cert, --http-auth-file); files in %s:\n", displayPath(h.Dir))
		fmt.Fprintf(tw, "  CA\t%s\n  users\t%s (%s: readwrite, password in %s; %s: read, token in %s)\n",
			displayPath(h.CA), displayPath(h.AuthFile), h.Writer, filepath.Base(h.WriterPasswordFile), h.Reader, filepath.Base(h.ReaderTokenFile))
	}
	_ = tw.Flush()
	b.WriteString("\nOpen a status page in a browser: every server, the leader and the elections, live.\n")
	if h := i.HTTP; h != nil {
		fmt.Fprintf(&b, "(The browser does not know the CA: accept the certificate, or import %s. Log in as %s, or as %s\nwith the token in %s as the password.)\n",
			displayPath(h.CA), h.Writer, h.Reader, displayPath(h.ReaderTokenFile))
	}
	b.WriteString("\nTry it from another terminal:\n")
	if !i.NATSCLI {
		b.WriteString("  (the nats lines need the NATS CLI: https://github.com/nats-io/natscli)\n")
	}
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, c := range i.Commands() {
		fmt.Fprintf(tw, "  %s\t# %s\n", c.Line, c.Comment)
	}
	_ = tw.Flush()
	b.WriteString("\nPress Ctrl-C to stop everything.\n")
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// safeShellWord matches words a POSIX shell takes literally.
var safeShellWord = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if safeShellWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// displayPath returns path relative to the working directory when it is
// inside it, so that printed commands stay short.
func displayPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	if !strings.Contains(rel, string(filepath.Separator)) {
		return "." + string(filepath.Separator) + rel
	}
	return rel
}

// Up starts a cluster.Local, waits until the servers agree on a leader,
// prints how to reach it (see UpInfo.WriteTo) and keeps it up until ctx
// ends, printing leadership changes and servers that exit. It then stops
// everything with a fresh deadline and returns nil; an error means the
// cluster could not start or elect a leader.
func Up(ctx context.Context, cfg UpConfig, out io.Writer) (err error) {
	dir, err := CreateLogDir(cfg.LogRoot, time.Now())
	if err != nil {
		return err
	}
	defer dir.Close()
	out = dir.Tee(out)
	log := dir.Logger()
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	local := cfg.Local
	local.LogDir, local.Progress, local.Logger = dir.Path, out, log
	var web *UpHTTP
	if !cfg.InsecureHTTP {
		var args []string
		if web, args, local.NodeTLS, err = setupHTTP(filepath.Join(dir.Path, "http")); err != nil {
			return err
		}
		local.NodeArgs = append(append([]string(nil), local.NodeArgs...), args...)
	}
	if local.SessionTimeout <= 0 {
		local.SessionTimeout = DefaultSessionTimeout
	}
	fmt.Fprintf(out, "logs: %s\n", dir.Path)
	lc, err := cluster.StartLocal(ctx, local)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping the cluster...")
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cluster.TeardownTimeout)
		defer cancel()
		if cerr := lc.Close(tctx); cerr != nil {
			fmt.Fprintf(out, "stopping the cluster: %v\n", cerr)
			if err == nil {
				err = cerr
			}
		} else {
			fmt.Fprintf(out, "stopped; logs in %s\n", dir.Path)
		}
	}()

	nc, err := connectNATS(ctx, lc.NATSURL(), cfg.Timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	kv, err := client.New(nc, client.WithRequestTimeout(DefaultRequestTimeout))
	if err != nil {
		return fmt.Errorf("bus client: %w", err)
	}
	r := &runner{
		cfg:     Config{Timeout: cfg.Timeout, Logger: log}.withDefaults(),
		cluster: lc,
		client:  kv,
		out:     out,
		log:     log,
		nodes:   lc.Nodes(),
		down:    map[string]bool{},
	}
	ag, st, err := r.waitAgreement(ctx, cfg.Timeout, leaderWant{})
	if err != nil {
		return fmt.Errorf("%s: %w", st.Text, err)
	}

	info := UpInfo{
		NATSURL:        lc.NATSURL(),
		ZooKeeper:      lc.ZooKeeper(),
		ZooKeeperPID:   lc.ZooKeeperPID(),
		SessionTimeout: lc.SessionTimeout(),
		Leader:         ag.Leader,
		Epoch:          ag.Epoch,
		KVCtl:          "kvctl",
		LogDir:         dir.Path,
		HTTP:           web,
	}
	if cfg.KVCtl != "" {
		info.KVCtl = displayPath(cfg.KVCtl)
	}
	if _, lerr := exec.LookPath("nats"); lerr == nil {
		info.NATSCLI = true
	}
	for _, id := range lc.Nodes() {
		if n, ok := lc.Node(id); ok {
			info.Nodes = append(info.Nodes, n)
		}
	}
	if _, err := info.WriteTo(out); err != nil {
		return fmt.Errorf("print: %w", err)
	}
	if cfg.Ready != nil {
		cfg.Ready(info)
	}

	watchUntilDone(ctx, kv, lc, out, log)
	return nil
}

// watchUntilDone prints leadership changes (epoch markers on the
// replication subject) and servers that exit, until ctx ends. Every
// goroutine it starts has ended when it returns.
func watchUntilDone(ctx context.Context, kv *client.Client, lc *cluster.Local, out io.Writer, log *slog.Logger) {
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stamp := func() string { return time.Now().Format("15:04:05.000") }

	// Epoch markers on the replication subject announce each new leader.
	// They are printed, not trusted: nothing here acts on them.
	var last atomic.Uint64
	sub, err := kv.Conn().Subscribe(kv.Subjects().Replication(), func(m *nats.Msg) {
		var u bus.Update
		if bus.DecodeReply(m.Data, &u) != nil || u.Kind != bus.KindEpoch {
			return
		}
		for prev := last.Load(); u.Epoch > prev; prev = last.Load() {
			if last.CompareAndSwap(prev, u.Epoch) {
				fmt.Fprintf(out, "%s  %s now leads (epoch %d)\n", stamp(), u.Leader, u.Epoch)
				return
			}
		}
	})
	if err != nil {
		log.Warn("watch leadership changes", "err", err)
	} else {
		defer func() { _ = sub.Unsubscribe() }()
	}
	for _, id := range lc.Nodes() {
		n, ok := lc.Node(id)
		exited := lc.Exited(id)
		if !ok || exited == nil {
			continue
		}
		wg.Go(func() {
			select {
			case <-exited:
				fmt.Fprintf(out, "%s  %s (pid %d) exited; up does not restart it. To restart it by hand:\n  %s\n", stamp(), n.ID, n.PID, RestartLine(n))
			case <-wctx.Done():
			}
		})
	}
	<-ctx.Done()
	stop()
	wg.Wait()
}
