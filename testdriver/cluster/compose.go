package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zkvstore/zkv/internal/dockerapi"
	"github.com/zkvstore/zkv/internal/harness"
)

// Defaults of a ComposeConfig.
const (
	// DefaultDockerSocket is the Docker Engine's unix socket.
	DefaultDockerSocket = "/var/run/docker.sock"
	// DefaultDockerStopTimeout is how long a container stopped with
	// SIGTERM has to exit before it is killed.
	DefaultDockerStopTimeout = 15 * time.Second
	// DefaultNATSService is the compose service of the NATS server.
	DefaultNATSService = "nats"
	// DefaultKVServerPort is the container port of a kvserver's HTTP API
	// when its container does not set ZKV_PORT (kvserver's own default).
	DefaultKVServerPort = 8001
	// ZooKeeperClientPort is the client port of the ZooKeeper members
	// inside their containers.
	ZooKeeperClientPort = 2181
	// NATSClientPort is the client port of the NATS server inside its
	// container.
	NATSClientPort = 4222
)

// DefaultComposeNodes are the kvserver services of compose/docker-compose.yml.
func DefaultComposeNodes() []string { return []string{"n1", "n2", "n3"} }

// DefaultComposeZooKeeper are the ZooKeeper services of
// compose/docker-compose.yml.
func DefaultComposeZooKeeper() []string { return []string{"zoo1", "zoo2", "zoo3"} }

// The labels docker compose (v1 and v2) puts on the containers it creates.
const (
	LabelComposeProject = dockerapi.LabelComposeProject
	LabelComposeService = dockerapi.LabelComposeService
	LabelComposeOneOff  = dockerapi.LabelComposeOneOff
)

// DockerAPIError is a Docker Engine API answer other than 2xx; errors of a
// Compose wrap it when the engine refused a call.
type DockerAPIError = dockerapi.APIError

// Errors of a Compose; the errors it returns wrap them.
var (
	// ErrUnknownNode: the ID names no node (or member) of the cluster.
	ErrUnknownNode = errors.New("unknown node")
	// ErrNoContainer: a compose service has no container, or more than
	// one.
	ErrNoContainer = errors.New("no single container for the service")
	// ErrContainerExited: a container stopped while it was expected to
	// come up.
	ErrContainerExited = errors.New("container exited")
)

// ComposeConfig configures NewCompose for a project of
// compose/docker-compose.yml. On the host, set Project; inside the compose
// network (the driver service), set InNetwork and leave Project empty.
type ComposeConfig struct {
	// Project is the compose project name (the label
	// com.docker.compose.project). "" means the project of the container
	// this process runs in, found through its hostname (the container ID
	// docker gives it): the driver service.
	Project string
	// Socket is the path of the Docker Engine's unix socket. "" means the
	// path of a unix:// DOCKER_HOST, else DefaultDockerSocket.
	Socket string
	// Nodes are the compose services of the kvservers, in order; nil
	// means DefaultComposeNodes. A node's ID is the ZKV_ID of its
	// container, or the service name when that is not set.
	Nodes []string
	// ZooKeeper are the compose services of the ZooKeeper members, for
	// KillZooKeeper, StartZooKeeper and ZooKeeperMode; nil means
	// DefaultComposeZooKeeper. Services without a container are left out.
	ZooKeeper []string
	// InNetwork says the driver runs inside the compose network: it then
	// reaches a container at <service>:<container port>. Otherwise (on
	// the host) it uses the port docker published for that container
	// port, on 127.0.0.1 when published on every address.
	InNetwork bool
	// HTTP maps a node ID to the base URL of its HTTP API
	// ("http://127.0.0.1:8001"), overriding what InNetwork says.
	HTTP map[string]string
	// NATSURL is the URL the driver's NATS client uses. "" means the
	// NATSService's client port, as InNetwork says.
	NATSURL string
	// NATSService is the compose service of the NATS server; "" means
	// DefaultNATSService. Used only when NATSURL is "".
	NATSService string
	// StopTimeout is how long Stop with StopTerm waits for the container
	// to exit before it kills it; 0 means DefaultDockerStopTimeout.
	StopTimeout time.Duration
	// APIVersion is the Engine API version of every request ("1.41");
	// "" sends unversioned paths, which the engine serves with its own
	// version.
	APIVersion string
}

// withDefaults returns c with every zero field set to its default.
func (c ComposeConfig) withDefaults() ComposeConfig {
	if c.Socket == "" {
		c.Socket = DefaultDockerSocket
		if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok && h != "" {
			c.Socket = h
		}
	}
	if c.Nodes == nil {
		c.Nodes = DefaultComposeNodes()
	}
	if c.ZooKeeper == nil {
		c.ZooKeeper = DefaultComposeZooKeeper()
	}
	if c.NATSService == "" {
		c.NATSService = DefaultNATSService
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultDockerStopTimeout
	}
	return c
}

// Compose is a zkv deployment of docker compose: it implements Cluster,
// Versioned and ZooKeeperFaults by killing and starting the project's
// containers through the Docker Engine API on its unix socket (package
// dockerapi), so it needs no docker CLI and works from inside a container
// that has the socket mounted. It starts nothing itself: the project must
// be up.
//
// Its methods are safe for concurrent use, but Stop and Start of one node
// are meant to come from one goroutine at a time.
type Compose struct {
	cfg     ComposeConfig
	api     *dockerapi.Client
	health  *http.Client
	natsURL string
	nodes   []*dockerMember // in cfg.Nodes order
	zk      []*dockerMember // in cfg.ZooKeeper order
}

// dockerMember is one container of the project.
type dockerMember struct {
	service   string
	id        string // node ID (kvserver) or the service (ZooKeeper)
	container string // container ID
	name      string // container name, without the leading "/"
	port      int    // container port of the HTTP API or the client port
	// session is the ZKV_SESSION_TIMEOUT of the container's environment
	// (0 when unset or not a duration).
	session time.Duration
}

// NewCompose finds the containers of cfg's compose project and
// returns the cluster they form. Each kvserver service must have exactly
// one container (running or not). It fails when the engine cannot be
// reached or ctx ends first.
func NewCompose(ctx context.Context, cfg ComposeConfig) (*Compose, error) {
	cfg = cfg.withDefaults()
	c := &Compose{
		cfg:    cfg,
		api:    dockerapi.New(cfg.Socket, cfg.APIVersion),
		health: &http.Client{Timeout: 2 * time.Second},
	}
	if cfg.Project == "" {
		p, err := c.ownProject(ctx)
		if err != nil {
			return nil, fmt.Errorf("docker cluster: no compose project given: %w", err)
		}
		c.cfg.Project = p
	}
	if len(cfg.Nodes) == 0 {
		return nil, errors.New("docker cluster: no kvserver services given")
	}
	for _, svc := range cfg.Nodes {
		m, err := c.member(ctx, svc)
		if err != nil {
			return nil, fmt.Errorf("docker cluster: %w", err)
		}
		if slices.ContainsFunc(c.nodes, func(o *dockerMember) bool { return o.id == m.id }) {
			return nil, fmt.Errorf("docker cluster: two services have node ID %q", m.id)
		}
		c.nodes = append(c.nodes, m)
	}
	for _, svc := range cfg.ZooKeeper {
		m, err := c.member(ctx, svc)
		if errors.Is(err, ErrNoContainer) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("docker cluster: %w", err)
		}
		m.id, m.port = svc, ZooKeeperClientPort
		c.zk = append(c.zk, m)
	}
	c.natsURL = cfg.NATSURL
	if c.natsURL == "" {
		m, err := c.member(ctx, cfg.NATSService)
		if err != nil {
			return nil, fmt.Errorf("docker cluster: NATS: %w", err)
		}
		m.port = NATSClientPort
		addr, err := c.addr(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("docker cluster: NATS: %w", err)
		}
		c.natsURL = "nats://" + addr
	}
	return c, nil
}

// ownProject is the compose project of the container this process runs in.
func (c *Compose) ownProject(ctx context.Context) (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("hostname: %w", err)
	}
	ct, err := c.api.Inspect(ctx, host)
	if err != nil {
		return "", fmt.Errorf("this process does not run in a container of this engine (hostname %s): %w", host, err)
	}
	p := ct.Config.Labels[LabelComposeProject]
	if p == "" {
		return "", fmt.Errorf("container %s has no label %s", ct.DisplayName(), LabelComposeProject)
	}
	return p, nil
}

// member finds the one container of service svc (one-off containers of
// `docker-compose run` left out).
func (c *Compose) member(ctx context.Context, svc string) (*dockerMember, error) {
	list, err := c.api.List(ctx, LabelComposeProject+"="+c.cfg.Project, LabelComposeService+"="+svc)
	if err != nil {
		return nil, err
	}
	list = slices.DeleteFunc(list, func(s dockerapi.Summary) bool {
		return strings.EqualFold(s.Labels[LabelComposeOneOff], "true")
	})
	if len(list) != 1 {
		return nil, fmt.Errorf("%w: project %s, service %s has %d containers (is the project up?)", ErrNoContainer, c.cfg.Project, svc, len(list))
	}
	ct, err := c.api.Inspect(ctx, list[0].ID)
	if err != nil {
		return nil, err
	}
	m := &dockerMember{service: svc, id: svc, container: ct.ID, name: ct.DisplayName(), port: DefaultKVServerPort}
	env := ct.Env()
	if id := env["ZKV_ID"]; id != "" {
		m.id = id
	}
	if p, err := strconv.Atoi(env["ZKV_PORT"]); err == nil && p > 0 {
		m.port = p
	}
	if d, err := time.ParseDuration(env["ZKV_SESSION_TIMEOUT"]); err == nil && d > 0 {
		m.session = d
	}
	return m, nil
}

// node returns the kvserver with ID id.
func (c *Compose) node(id string) (*dockerMember, error) {
	for _, m := range c.nodes {
		if m.id == id {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w %q in compose project %s", ErrUnknownNode, id, c.cfg.Project)
}

// zkMember returns the ZooKeeper member of service svc.
func (c *Compose) zkMember(svc string) (*dockerMember, error) {
	for _, m := range c.zk {
		if m.service == svc {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w: no ZooKeeper member %q in compose project %s", ErrUnknownNode, svc, c.cfg.Project)
}

// addr is host:port where the driver reaches m's port: <service>:<port>
// inside the network, else the published port (on 127.0.0.1 when
// published on every address), else the container's own address. The
// container must run: docker publishes ports only then.
func (c *Compose) addr(ctx context.Context, m *dockerMember) (string, error) {
	port := strconv.Itoa(m.port)
	if c.cfg.InNetwork {
		return net.JoinHostPort(m.service, port), nil
	}
	ct, err := c.api.Inspect(ctx, m.container)
	if err != nil {
		return "", err
	}
	for _, b := range ct.NetworkSettings.Ports[port+"/tcp"] {
		if b.HostPort == "" {
			continue
		}
		host := b.HostIP
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		return net.JoinHostPort(host, b.HostPort), nil
	}
	for _, n := range ct.NetworkSettings.Networks {
		if n.IPAddress != "" {
			return net.JoinHostPort(n.IPAddress, port), nil
		}
	}
	return "", fmt.Errorf("container %s: port %s is not published and the container has no address (is it running?)", m.name, port)
}

// HTTPURL is the base URL of node id's HTTP API ("http://127.0.0.1:8001").
// Unless ComposeConfig.HTTP names it, the node's container must run.
func (c *Compose) HTTPURL(ctx context.Context, id string) (string, error) {
	if u := c.cfg.HTTP[id]; u != "" {
		return strings.TrimSuffix(u, "/"), nil
	}
	m, err := c.node(id)
	if err != nil {
		return "", err
	}
	a, err := c.addr(ctx, m)
	if err != nil {
		return "", err
	}
	return "http://" + a, nil
}

// Project is the compose project name.
func (c *Compose) Project() string { return c.cfg.Project }

// SessionTimeout is the kvservers' ZooKeeper session timeout: the
// ZKV_SESSION_TIMEOUT of the first kvserver container's environment, or
// kvserver's default when that does not set it.
func (c *Compose) SessionTimeout() time.Duration {
	if len(c.nodes) > 0 && c.nodes[0].session > 0 {
		return c.nodes[0].session
	}
	return KVServerSessionTimeout
}

// KVServerSessionTimeout is kvserver's default --session-timeout. The
// cluster package does not import the server's packages (their tests
// start clusters with it); a test keeps the two equal.
const KVServerSessionTimeout = 4 * time.Second

// NATSURL is the URL the driver's NATS client uses.
func (c *Compose) NATSURL() string { return c.natsURL }

// Nodes returns the node IDs, in the order of ComposeConfig.Nodes.
func (c *Compose) Nodes() []string {
	ids := make([]string, len(c.nodes))
	for i, m := range c.nodes {
		ids[i] = m.id
	}
	return ids
}

// Describe is "container <name>".
func (c *Compose) Describe(id string) string {
	m, err := c.node(id)
	if err != nil {
		return "unknown node"
	}
	return "container " + m.name
}

// Stop stops node id's container and waits until it no longer runs:
// StopKill is `docker kill` (SIGKILL); StopTerm sends SIGTERM and waits
// for a clean exit (status 0), killing the container when it has not
// exited within ComposeConfig.StopTimeout. A container that does not run
// is not an error.
func (c *Compose) Stop(ctx context.Context, id string, how Stop) error {
	m, err := c.node(id)
	if err != nil {
		return err
	}
	if err := c.stop(ctx, m, how); err != nil {
		return fmt.Errorf("stop %s (container %s) with %s: %w", id, m.name, how.Signal(), err)
	}
	return nil
}

func (c *Compose) stop(ctx context.Context, m *dockerMember, how Stop) error {
	switch how {
	case StopKill:
		if err := c.api.Kill(ctx, m.container, "SIGKILL"); err != nil {
			return err
		}
		_, err := c.api.Wait(ctx, m.container)
		return err
	case StopTerm:
		if err := c.api.Kill(ctx, m.container, "SIGTERM"); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, c.cfg.StopTimeout)
		code, err := c.api.Wait(wctx, m.container)
		cancel()
		if err == nil {
			if code != 0 {
				return fmt.Errorf("exited with status %d", code)
			}
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if kerr := c.api.Kill(ctx, m.container, "SIGKILL"); kerr != nil {
			return errors.Join(err, kerr)
		}
		if _, werr := c.api.Wait(ctx, m.container); werr != nil {
			return errors.Join(err, werr)
		}
		return fmt.Errorf("did not exit within %v, killed: %w", c.cfg.StopTimeout, err)
	}
	return fmt.Errorf("unknown way %q", how)
}

// Start starts node id's container again (an empty store: kvserver keeps
// nothing on disk) and waits until GET /healthz answers 200. It fails
// early, with the tail of the container's log, when the container exits.
func (c *Compose) Start(ctx context.Context, id string) error {
	m, err := c.node(id)
	if err != nil {
		return err
	}
	if err := c.api.Start(ctx, m.container); err != nil {
		return fmt.Errorf("start %s (container %s): %w", id, m.name, err)
	}
	err = c.waitUp(ctx, m, func(ctx context.Context) error {
		base, err := c.HTTPURL(ctx, id)
		if err != nil {
			return err
		}
		return c.healthy(ctx, base+"/healthz")
	})
	if err != nil {
		return fmt.Errorf("start %s (container %s): %w", id, m.name, err)
	}
	return nil
}

// healthy GETs u and wants 200.
func (c *Compose) healthy(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.health.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

// waitUp polls ready until it succeeds, m's container exits (the error then
// carries its log tail) or ctx ends.
func (c *Compose) waitUp(ctx context.Context, m *dockerMember, ready func(context.Context) error) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		ct, ierr := c.api.Inspect(ctx, m.container)
		if ierr == nil && !ct.State.Running {
			tail, _ := c.api.Logs(ctx, m.container, ct.Config.Tty, 20)
			return fmt.Errorf("%w with status %d; last lines:\n%s", ErrContainerExited, ct.State.ExitCode, tail)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not up: %w (last: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Close releases the cluster's idle connections. It stops nothing: the
// compose project outlives the Compose.
func (c *Compose) Close(context.Context) error {
	c.health.CloseIdleConnections()
	c.api.Close()
	return nil
}

// ZooKeeperMembers are the compose services of the ZooKeeper members that
// have a container.
func (c *Compose) ZooKeeperMembers() []string {
	out := make([]string, len(c.zk))
	for i, m := range c.zk {
		out[i] = m.service
	}
	return out
}

// KillZooKeeper kills the container of ZooKeeper member (its compose
// service) with SIGKILL and waits until it no longer runs.
func (c *Compose) KillZooKeeper(ctx context.Context, member string) error {
	m, err := c.zkMember(member)
	if err != nil {
		return err
	}
	if err := c.stop(ctx, m, StopKill); err != nil {
		return fmt.Errorf("kill ZooKeeper %s (container %s): %w", member, m.name, err)
	}
	return nil
}

// StartZooKeeper starts the container of ZooKeeper member again and waits
// until it serves: srvr reports a Mode (leader, follower or standalone).
func (c *Compose) StartZooKeeper(ctx context.Context, member string) error {
	m, err := c.zkMember(member)
	if err != nil {
		return err
	}
	if err := c.api.Start(ctx, m.container); err != nil {
		return fmt.Errorf("start ZooKeeper %s (container %s): %w", member, m.name, err)
	}
	err = c.waitUp(ctx, m, func(ctx context.Context) error {
		_, err := c.zooKeeperMode(ctx, m)
		return err
	})
	if err != nil {
		return fmt.Errorf("start ZooKeeper %s (container %s): %w", member, m.name, err)
	}
	return nil
}

// ZooKeeperMode asks member for its mode with the srvr command: "leader",
// "follower" or "standalone". A member that is not serving (it does not
// run, or has no quorum) is an error.
func (c *Compose) ZooKeeperMode(ctx context.Context, member string) (string, error) {
	m, err := c.zkMember(member)
	if err != nil {
		return "", err
	}
	return c.zooKeeperMode(ctx, m)
}

func (c *Compose) zooKeeperMode(ctx context.Context, m *dockerMember) (string, error) {
	addr, err := c.addr(ctx, m)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, srvrTimeout)
	defer cancel()
	mode, _, err := harness.ZooKeeperStat(ctx, addr)
	if err != nil {
		return "", fmt.Errorf("ZooKeeper %s: %w", m.service, err)
	}
	return mode, nil
}

// srvrTimeout bounds one srvr exchange with a ZooKeeper container.
const srvrTimeout = 2 * time.Second

// Versions reports the ZooKeeper version (from srvr of the first member
// that answers) and the image of the kvservers.
func (c *Compose) Versions(ctx context.Context) map[string]string {
	v := map[string]string{}
	for _, m := range c.zk {
		addr, err := c.addr(ctx, m)
		if err != nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, srvrTimeout)
		_, version, _ := harness.ZooKeeperStat(sctx, addr)
		cancel()
		if version != "" {
			v["zookeeper"] = version
			break
		}
	}
	if len(c.nodes) > 0 {
		if ct, err := c.api.Inspect(ctx, c.nodes[0].container); err == nil {
			v["kvserver image"] = ct.Config.Image
		}
	}
	return v
}

// SaveLogs writes the log of every container of the project, one-off ones
// included, to dir/<service>.log (stdout and stderr, with docker's
// timestamps). It goes on after a failure and returns the joined errors.
func (c *Compose) SaveLogs(ctx context.Context, dir string) error {
	list, err := c.api.List(ctx, LabelComposeProject+"="+c.cfg.Project)
	if err != nil {
		return fmt.Errorf("save logs: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save logs: %w", err)
	}
	var errs []error
	for _, s := range list {
		name := s.Labels[LabelComposeService]
		if name == "" || strings.EqualFold(s.Labels[LabelComposeOneOff], "true") {
			name = strings.TrimPrefix(s.DisplayName(), "/")
		}
		ct, err := c.api.Inspect(ctx, s.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		text, err := c.api.Logs(ctx, s.ID, ct.Config.Tty, -1)
		if err != nil {
			errs = append(errs, fmt.Errorf("logs of %s: %w", ct.DisplayName(), err))
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name+".log"), []byte(text), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("save logs: %w", err))
		}
	}
	return errors.Join(errs...)
}

var _ interface {
	Cluster
	Versioned
	ZooKeeperFaults
} = (*Compose)(nil)
