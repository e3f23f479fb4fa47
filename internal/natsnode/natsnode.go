package natsnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/zkvstore/zkv/bus"
)

// DefaultClusterName is the NATS cluster name when Config.ClusterName is
// empty.
const DefaultClusterName = "zkv"

// DefaultReadyTimeout bounds Start's wait for the server to accept
// connections when Config.ReadyTimeout is 0.
const DefaultReadyTimeout = 10 * time.Second

// Config configures Start.
type Config struct {
	// Name is the server's name, unique in the NATS cluster (the node
	// ID). Default: nats-server picks one.
	Name string
	// Listen is the client listener, host:port; port 0 picks a free one.
	// Required.
	Listen string
	// ClusterListen is the route listener, host:port; port 0 picks a free
	// one. "" keeps the config file's cluster block, or runs no cluster.
	ClusterListen string
	// Routes are the route URLs of the other servers
	// (nats-route://host:port); one to this server itself is ignored by
	// nats-server, so every node may be given the same list. Needs
	// ClusterListen (or a cluster block in ConfigFile).
	Routes []string
	// ClusterName names the NATS cluster; every server of it must use the
	// same. Default DefaultClusterName.
	ClusterName string
	// ConfigFile is a nats-server configuration file (authorization,
	// accounts, TLS, limits). Listen, ClusterListen and Routes override
	// its listen, cluster and routes. Set, it alone decides who may
	// connect, and Auth is only what this node connects with.
	ConfigFile string
	// Auth, without ConfigFile, is also the one identity the listener
	// accepts: user and password, a token, or an NKey. A creds file
	// (JWT) or TLS needs an operator or a certificate the server side
	// must be given in ConfigFile, and is refused here without it.
	Auth bus.Auth
	// ReadyTimeout bounds Start's wait for readiness. Default
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Logger receives the server's log. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("nats listen address is empty"))
	} else if err := validAddr(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("nats listen address %q: %w", c.Listen, err))
	}
	if c.ClusterListen != "" {
		if err := validAddr(c.ClusterListen); err != nil {
			errs = append(errs, fmt.Errorf("nats cluster listen address %q: %w", c.ClusterListen, err))
		} else if _, port, _ := net.SplitHostPort(c.Listen); c.ClusterListen == c.Listen && port != "0" {
			errs = append(errs, fmt.Errorf("nats cluster listen address %q is the client listen address %q", c.ClusterListen, c.Listen))
		}
	}
	if len(c.Routes) > 0 && c.ClusterListen == "" && c.ConfigFile == "" {
		errs = append(errs, fmt.Errorf("nats routes %v need a cluster listen address", c.Routes))
	}
	for _, r := range c.Routes {
		if err := validRoute(r); err != nil {
			errs = append(errs, fmt.Errorf("nats route %q: %w", r, err))
		}
	}
	if strings.ContainsAny(c.ClusterName, " \t\r\n") {
		errs = append(errs, fmt.Errorf("nats cluster name %q contains white space", c.ClusterName))
	}
	if c.ConfigFile == "" {
		a := c.Auth
		if a.CredsFile != "" {
			errs = append(errs, fmt.Errorf("nats creds file %q: the listener of an embedded server accepts creds only with an operator set in a nats config file", a.CredsFile))
		}
		if a.TLSCA != "" || a.TLSCert != "" || a.TLSKey != "" {
			errs = append(errs, errors.New("nats TLS: the listener of an embedded server needs its certificate from a nats config file"))
		}
	} else if _, err := os.Stat(c.ConfigFile); err != nil {
		errs = append(errs, fmt.Errorf("nats config file: %w", err))
	}
	if c.ReadyTimeout < 0 {
		errs = append(errs, fmt.Errorf("nats ready timeout %s must be positive", c.ReadyTimeout))
	}
	return errors.Join(errs...)
}

// validAddr checks a host:port listen address.
func validAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q: want 0 to 65535", port)
	}
	return nil
}

// validRoute checks a route URL.
func validRoute(r string) error {
	u, err := url.Parse(r)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "nats-route", "nats", "tls":
	default:
		return fmt.Errorf("scheme %q: want nats-route://host:port", u.Scheme)
	}
	if u.Port() == "" {
		return errors.New("no port: want nats-route://host:port")
	}
	return nil
}

// Server is a running embedded nats-server. Its methods are safe for
// concurrent use.
type Server struct {
	srv  *server.Server
	log  *slog.Logger
	once sync.Once
}

// Start starts the server described by cfg and waits until it accepts
// connections on every listener. On failure nothing is left running.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	opts, err := options(cfg)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	lg := &logger{log: cfg.Logger.With("component", "nats-server")}
	srv.SetLoggerV2(lg, cfg.Logger.Enabled(context.Background(), slog.LevelDebug), false, false)
	srv.Start()
	if err := waitReady(srv, lg, cfg.ReadyTimeout); err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("nats server on %s: %w", cfg.Listen, err)
	}
	s := &Server{srv: srv, log: cfg.Logger}
	attrs := []any{"component", "nats-server", "name", srv.Name(), "listen", s.ClientURL(), "version", server.VERSION}
	if a := srv.ClusterAddr(); a != nil {
		attrs = append(attrs, "cluster", opts.Cluster.Name, "cluster_listen", a.String(), "routes", len(opts.Routes))
	}
	cfg.Logger.Info("nats server ready", attrs...)
	return s, nil
}

// options turns cfg into nats-server options.
func options(cfg Config) (*server.Options, error) {
	opts := &server.Options{}
	if cfg.ConfigFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(cfg.ConfigFile); err != nil {
			return nil, fmt.Errorf("nats config file: %w", err)
		}
	} else {
		switch a := cfg.Auth; {
		case a.User != "" || a.Password != "":
			opts.Username, opts.Password = a.User, a.Password
		case a.Token != "":
			opts.Authorization = a.Token
		case a.NKeySeedFile != "":
			pub, err := nkeyPublic(a.NKeySeedFile)
			if err != nil {
				return nil, err
			}
			opts.Nkeys = []*server.NkeyUser{{Nkey: pub}}
		}
	}
	opts.NoSigs = true
	opts.NoLog = false
	if opts.ServerName == "" {
		opts.ServerName = cfg.Name
	}
	host, port, err := splitListen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
	}
	opts.Host, opts.Port = host, port
	if cfg.ClusterListen != "" {
		host, port, err := splitListen(cfg.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("nats cluster listen address %q: %w", cfg.ClusterListen, err)
		}
		opts.Cluster.Host, opts.Cluster.Port = host, port
	}
	if cfg.ClusterName != "" || opts.Cluster.Name == "" {
		opts.Cluster.Name = cfg.ClusterName
		if opts.Cluster.Name == "" {
			opts.Cluster.Name = DefaultClusterName
		}
	}
	if len(cfg.Routes) > 0 {
		opts.Routes = server.RoutesFromStr(strings.Join(cfg.Routes, ","))
	}
	return opts, nil
}

// splitListen splits host:port; port 0 becomes nats-server's "random".
func splitListen(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// nkeyPublic reads a user seed file and returns its public key.
func nkeyPublic(file string) (string, error) {
	seed, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("nats nkey: %w", err)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		return "", fmt.Errorf("nats nkey %s: %w", file, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("nats nkey %s: %w", file, err)
	}
	return pub, nil
}

// waitReady waits until srv accepts connections, a fatal error is logged
// (a busy port: nats-server then never becomes ready), or timeout passes.
func waitReady(srv *server.Server, lg *logger, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if srv.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		if err := lg.fatal(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready for connections after %v", timeout)
		}
	}
}

// ClientURL is the URL of the client listener, with the port it got.
func (s *Server) ClientURL() string {
	// nats-server's ClientURL has the scheme (nats or tls) and the
	// configured port, which is -1 when a free one was asked for.
	u, err := url.Parse(s.srv.ClientURL())
	a, ok := s.srv.Addr().(*net.TCPAddr)
	if err != nil || !ok {
		return s.srv.ClientURL()
	}
	u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(a.Port))
	return u.String()
}

// ClusterURL is the route URL (nats-route://host:port) of the route
// listener, or "" without a cluster.
func (s *Server) ClusterURL() string {
	a := s.srv.ClusterAddr()
	if a == nil {
		return ""
	}
	return "nats-route://" + a.String()
}

// InProcess is the server for nats.InProcessServer.
func (s *Server) InProcess() *server.Server { return s.srv }

// Shutdown closes every connection and listener and waits until the
// server is down. It may be called more than once.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.log.Info("nats server stopped", "component", "nats-server")
	})
}
