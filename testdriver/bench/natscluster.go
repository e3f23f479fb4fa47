package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"zkv/internal/harness"
)

// NATSCluster is three embedded NATS servers clustered on loopback, with
// JetStream. zkv and the echo responder use the first one; JetStream R1
// streams are placed on it too, so every figure goes through one server.
type NATSCluster struct {
	Servers []*server.Server
	dir     string
}

// StartNATSCluster starts n (1 or 3) servers named s1..sn, tagged
// "node:s1"..., and waits until JetStream has a meta leader.
func StartNATSCluster(ctx context.Context, n int) (*NATSCluster, error) {
	dir, err := os.MkdirTemp("", "zkv-bench-js-*")
	if err != nil {
		return nil, err
	}
	c := &NATSCluster{dir: dir}
	ports, err := harness.FreePorts(n)
	if err != nil {
		c.Shutdown()
		return nil, err
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(p))
	}
	for i := range n {
		name := "s" + strconv.Itoa(i+1)
		o := &server.Options{
			ServerName: name,
			Host:       "127.0.0.1",
			Port:       -1,
			NoSigs:     true,
			NoLog:      true,
			JetStream:  true,
			StoreDir:   dir + "/" + name,
			Tags:       jwt.TagList{"node:" + name},
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: ports[i]}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		s, err := server.NewServer(o)
		if err != nil {
			c.Shutdown()
			return nil, fmt.Errorf("nats %s: %w", name, err)
		}
		s.Start()
		c.Servers = append(c.Servers, s)
	}
	for _, s := range c.Servers {
		if !s.ReadyForConnections(10 * time.Second) {
			c.Shutdown()
			return nil, fmt.Errorf("nats %s: not ready", s.Name())
		}
	}
	err = harness.WaitFor(ctx, 50*time.Millisecond, func() error {
		for _, s := range c.Servers {
			if !s.JetStreamIsCurrent() {
				return fmt.Errorf("%s: JetStream not current", s.Name())
			}
			if n > 1 && s.JetStreamIsClustered() && s.ClusterName() == "" {
				return fmt.Errorf("%s: not clustered", s.Name())
			}
		}
		if n > 1 {
			leader := false
			for _, s := range c.Servers {
				leader = leader || s.JetStreamIsLeader()
			}
			if !leader {
				return fmt.Errorf("no JetStream meta leader yet")
			}
		}
		return nil
	})
	if err != nil {
		c.Shutdown()
		return nil, fmt.Errorf("nats cluster: %w", err)
	}
	return c, nil
}

// URL is the client URL of the first server.
func (c *NATSCluster) URL() string { return c.Servers[0].ClientURL() }

// Connect opens a connection to the first server.
func (c *NATSCluster) Connect() (*nats.Conn, error) {
	return nats.Connect(c.URL(), nats.MaxReconnects(-1))
}

// Shutdown stops the servers and removes their storage.
func (c *NATSCluster) Shutdown() {
	for _, s := range c.Servers {
		s.Shutdown()
	}
	for _, s := range c.Servers {
		s.WaitForShutdown()
	}
	_ = os.RemoveAll(c.dir)
}
