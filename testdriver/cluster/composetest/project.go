// Package composetest fakes a project of compose/docker-compose.yml for
// tests of cluster.Compose and of what runs on it: a fake Docker Engine
// (package dockertest) whose kvserver containers publish real HTTP health
// endpoints and whose ZooKeeper containers answer srvr.
package composetest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/dockerapi/dockertest"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Project fakes a project "p" of compose/docker-compose.yml: n1..n3 with
// health servers, zoo1..zoo3 answering srvr (zoo2 is the leader), and
// nats. Another project's n1 and a one-off container of p's n1 are there
// too, to be ignored.
type Project struct {
	Engine *dockertest.Engine
	Nodes  map[string]*dockertest.Container
	Health map[string]*atomic.Int32 // GET /healthz count by node
	ZK     map[string]*dockertest.Container
}

// NewProject starts the fake; the nodes' /healthz answers 503 to the first
// healthFails requests, then 200.
func NewProject(t *testing.T, healthFails int32) *Project {
	t.Helper()
	p := &Project{Engine: dockertest.New(t), Nodes: map[string]*dockertest.Container{}, Health: map[string]*atomic.Int32{}, ZK: map[string]*dockertest.Container{}}
	for i, svc := range cluster.DefaultComposeNodes() {
		port, hits := HealthServer(t, healthFails)
		cport := strconv.Itoa(8001 + i)
		p.Nodes[svc] = p.Engine.Add("p", svc, []string{"ZKV_ID=" + svc, "ZKV_PORT=" + cport}, map[string]string{cport + "/tcp": port})
		p.Health[svc] = hits
	}
	for i, svc := range cluster.DefaultComposeZooKeeper() {
		mode := "follower"
		if i == 1 {
			mode = "leader"
		}
		p.ZK[svc] = p.Engine.Add("p", svc, []string{"ZOO_MY_ID=" + strconv.Itoa(i+1)}, map[string]string{"2181/tcp": SrvrServer(t, mode)})
	}
	p.Engine.Add("p", "nats", nil, map[string]string{"4222/tcp": "14222"})
	p.Engine.Add("other", "n1", []string{"ZKV_ID=x1"}, nil)
	oneOff := p.Engine.Add("p", "n1", []string{"ZKV_ID=n1"}, nil)
	p.Engine.With(func() { oneOff.Labels[cluster.LabelComposeOneOff] = "True" })
	return p
}

// Cluster is NewCompose on the fake with cfg (Socket set to the fake's,
// Project "p" unless given), closed when t ends.
func (p *Project) Cluster(t *testing.T, cfg cluster.ComposeConfig) *cluster.Compose {
	t.Helper()
	cfg.Socket = p.Engine.Socket()
	if cfg.Project == "" {
		cfg.Project = "p"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cluster.NewCompose(ctx, cfg)
	if err != nil {
		t.Fatalf("NewCompose: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// HealthServer is a kvserver's HTTP API that answers /healthz with 503
// for the first fails requests, then 200. It returns its port on
// 127.0.0.1 and the count of /healthz requests.
func HealthServer(t *testing.T, fails int32) (port string, hits *atomic.Int32) {
	t.Helper()
	hits = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if hits.Add(1) <= fails {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return port, hits
}

// SrvrServer answers ZooKeeper's srvr command as ZooKeeper 3.8 does, with
// mode; it returns its port on 127.0.0.1.
func SrvrServer(t *testing.T, mode string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4)
			if _, err := conn.Read(buf); err == nil && string(buf) == "srvr" {
				fmt.Fprintf(conn, "Zookeeper version: 3.8.0-test, built on 2024-12-29 17:54 UTC\nLatency min/avg/max: 0/0.0/0\nMode: %s\nNode count: 5\n", mode)
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
