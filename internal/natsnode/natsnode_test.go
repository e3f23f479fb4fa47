package natsnode

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// testLogger logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"listen only", Config{Listen: "127.0.0.1:0"}, ""},
		{"cluster", Config{Listen: "127.0.0.1:4222", ClusterListen: "127.0.0.1:6222", Routes: []string{"nats-route://a:6222", "nats://b:6222"}}, ""},
		{"no listen", Config{}, "nats listen address is empty"},
		{"bad listen", Config{Listen: "4222"}, `nats listen address "4222"`},
		{"bad port", Config{Listen: "h:99999"}, "want 0 to 65535"},
		{"same listeners", Config{Listen: "h:1", ClusterListen: "h:1"}, "is the client listen address"},
		{"routes without cluster", Config{Listen: "h:1", Routes: []string{"nats-route://a:6222"}}, "need a cluster listen address"},
		{"bad route scheme", Config{Listen: "h:1", ClusterListen: "h:2", Routes: []string{"http://a:6222"}}, `scheme "http"`},
		{"route without port", Config{Listen: "h:1", ClusterListen: "h:2", Routes: []string{"nats-route://a"}}, "no port"},
		{"cluster name", Config{Listen: "h:1", ClusterName: "a b"}, "white space"},
		{"creds without config", Config{Listen: "h:1", Auth: bus.Auth{CredsFile: "u.creds"}}, "operator"},
		{"tls without config", Config{Listen: "h:1", Auth: bus.Auth{TLSCA: "ca.pem"}}, "certificate"},
		{"missing config file", Config{Listen: "h:1", ConfigFile: "/nonexistent/zkv.conf"}, "nats config file"},
	} {
		err := tt.cfg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Logger = testLogger(t)
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestCluster: two servers joined by a route; a client of one reaches a
// responder connected in-process to the other, and the client learns the
// other's URL.
func TestCluster(t *testing.T) {
	a := start(t, Config{Name: "a", Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0"})
	b := start(t, Config{Name: "b", Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Routes: []string{a.ClusterURL()}})

	inproc, err := nats.Connect(a.ClientURL(), nats.InProcessServer(a.InProcess()))
	if err != nil {
		t.Fatal(err)
	}
	defer inproc.Close()
	if _, err := inproc.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	if err := inproc.Flush(); err != nil {
		t.Fatal(err)
	}
	client, err := nats.Connect(b.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := client.Request("echo", []byte("hi"), 200*time.Millisecond)
		if err == nil {
			if string(m.Data) != "hi" {
				t.Fatalf("reply %q", m.Data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reply across the route: %v", err)
		}
	}
	for len(client.DiscoveredServers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client was not told the other server's URL")
		}
		_ = client.Flush()
	}
	if got, want := client.DiscoveredServers()[0], a.ClientURL(); got != want {
		t.Errorf("discovered %q, want %q", got, want)
	}
}

// TestAuth: the listener takes the user and password of Auth, in-process
// connections included.
func TestAuth(t *testing.T) {
	s := start(t, Config{Listen: "127.0.0.1:0", Auth: bus.Auth{User: "zkv", Password: "secret"}})
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("zkv", "secret"), nats.InProcessServer(s.InProcess()))
	if err != nil {
		t.Fatalf("in-process with the password: %v", err)
	}
	nc.Close()
	if nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("zkv", "wrong")); err == nil {
		nc.Close()
		t.Fatal("a wrong password was accepted")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("wrong password: %v, want an authorization error", err)
	}
	if nc, err := nats.Connect(s.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("no credentials were accepted")
	}
}

// TestBusyPort: a listener that cannot bind fails Start at once, with
// the server's reason, and leaves nothing running.
func TestBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	begin := time.Now()
	_, err = Start(Config{Listen: l.Addr().String(), Logger: testLogger(t)})
	if err == nil {
		t.Fatal("started on a busy port")
	}
	if !strings.Contains(err.Error(), "listen") {
		t.Errorf("error %v does not say why", err)
	}
	if el := time.Since(begin); el > DefaultReadyTimeout/2 {
		t.Errorf("took %v to fail", el)
	}
}

// TestConfigFile: the compose deployment's config file applies to the
// embedded listener: its users and their permissions.
func TestConfigFile(t *testing.T) {
	t.Setenv("ZKV_NATS_SERVER_PASSWORD", "server-secret")
	t.Setenv("ZKV_NATS_CLIENT_PASSWORD", "client-secret")
	s := start(t, Config{Listen: "127.0.0.1:0", ConfigFile: "../../compose/nats/zkv.conf", Auth: bus.Auth{User: "zkv-server", Password: "server-secret"}})
	srvConn, err := nats.Connect(s.ClientURL(), nats.UserInfo("zkv-server", "server-secret"), nats.InProcessServer(s.InProcess()))
	if err != nil {
		t.Fatalf("the server user in-process: %v", err)
	}
	defer srvConn.Close()
	if _, err := srvConn.Subscribe("kv.write", func(m *nats.Msg) { _ = m.Respond([]byte("ok")) }); err != nil {
		t.Fatal(err)
	}
	if err := srvConn.Flush(); err != nil {
		t.Fatal(err)
	}
	denied := make(chan error, 1)
	client, err := nats.Connect(s.ClientURL(), nats.UserInfo("zkv-client", "client-secret"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case denied <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("the client user: %v", err)
	}
	defer client.Close()
	if m, err := client.Request("kv.write", nil, 2*time.Second); err != nil || string(m.Data) != "ok" {
		t.Fatalf("a permitted request: %v", err)
	}
	if err := client.Publish("kv.replication", []byte("forged")); err != nil {
		t.Fatal(err)
	}
	_ = client.Flush()
	select {
	case err := <-denied:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("publish on kv.replication: %v, want a permissions violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the client user published on kv.replication unchallenged")
	}
	if nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("zkv-client", "wrong")); err == nil {
		nc.Close()
		t.Error("a wrong password was accepted")
	}
}
