package node_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/httpauth"
	"github.com/zkvstore/zkv/internal/testenv"
)

// Credentials of the secured tests. The token is for the read-only user ci.
const (
	alicePW = "alice-secret-pw"
	bobPW   = "bob-secret-pw-2"
	ciToken = "ci-token-0123456789abcdef0123456789"
)

// writeAuthFile writes an auth file with alice (readwrite), bob (read) and
// ci (read, a token) into dir and returns its path and its text.
func writeAuthFile(t *testing.T, dir string) (string, string) {
	t.Helper()
	a, err := httpauth.HashPassword(alicePW, bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	b, err := httpauth.HashPassword(bobPW, bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	c, err := httpauth.HashToken(ciToken)
	if err != nil {
		t.Fatal(err)
	}
	text := "# test users\n" + httpauth.Line("alice", httpauth.RoleReadWrite, a) + "\n" +
		httpauth.Line("bob", httpauth.RoleRead, b) + "\n" + httpauth.Line("ci", httpauth.RoleRead, c) + "\n"
	path := filepath.Join(dir, "users")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, text
}

// client is an HTTP client for one node, with TLS settings.
type httpClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newHTTPClient(t *testing.T, base string, cfg *tls.Config) *httpClient {
	tr := &http.Transport{Proxy: nil, TLSClientConfig: cfg, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &httpClient{t: t, base: base, c: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

// auth sets credentials on a request: "user:password", "Bearer token",
// "Raw header value" or "" for none.
func setAuth(req *http.Request, cred string) {
	switch {
	case cred == "":
	case strings.HasPrefix(cred, "Bearer ") || strings.HasPrefix(cred, "Raw "):
		req.Header.Set("Authorization", strings.TrimPrefix(cred, "Raw "))
	default:
		u, p, _ := strings.Cut(cred, ":")
		req.SetBasicAuth(u, p)
	}
}

// do sends a request and returns the status, the headers and the body.
func (h *httpClient) do(method, path, cred, body string) (int, http.Header, string, error) {
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	setAuth(req, cred)
	resp, err := h.c.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// must is do that fails the test on a transport error or another status.
func (h *httpClient) must(method, path, cred, body string, want int) (http.Header, string) {
	h.t.Helper()
	status, hdr, b, err := h.do(method, path, cred, body)
	if err != nil {
		h.t.Fatalf("%s %s as %q: %v", method, path, credName(cred), err)
	}
	if status != want {
		h.t.Fatalf("%s %s as %q: status %d, want %d: %s", method, path, credName(cred), status, want, b)
	}
	return hdr, b
}

// credName describes credentials without their secret, for messages.
func credName(cred string) string {
	if cred == "" || strings.HasPrefix(cred, "Bearer ") || strings.HasPrefix(cred, "Raw ") {
		return strings.SplitN(cred, " ", 2)[0]
	}
	u, _, _ := strings.Cut(cred, ":")
	return u
}

// waitLeader polls /v1/status until the node leads.
func (h *httpClient) waitLeader(cred string) {
	h.t.Helper()
	testenv.WaitFor(h.t, 20*time.Second, "the node to lead", func() error {
		_, _, body, err := h.do("GET", "/v1/status", cred, "")
		if err != nil {
			return err
		}
		if !strings.Contains(body, `"role":"leader"`) {
			return fmt.Errorf("status %s", body)
		}
		return nil
	})
}

// errorCode returns the code of a JSON error body.
func errorCode(t *testing.T, body string) bus.Code {
	t.Helper()
	var e bus.ErrorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == nil {
		t.Fatalf("not a JSON error body: %q (%v)", body, err)
	}
	return e.Error.Code
}

// startSecureNode starts one kvserver (alone, so it leads) with args.
func startSecureNode(t *testing.T, clientTLS *tls.Config, args ...string) *harness.Node {
	t.Helper()
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	n := testenv.StartNode(t, harness.NodeOptions{
		ID: "n1", ZooKeeper: zk.Addr(), NATSURL: ns.URL(), SessionTimeout: stableTimeout,
		LogLevel: "debug", TLS: clientTLS, Args: args,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHTTPSecured runs a node with TLS, an auth file and pprof: clients
// without the CA fail; every /v1 endpoint and method answers 401 without
// valid credentials and 403 to a read-only user's write; secrets appear in
// neither the log nor the status; a burst of bad credentials is refused
// while good ones keep working; SIGHUP reloads the certificate and never
// kills.
func TestHTTPSecured(t *testing.T) {
	dir := t.TempDir()
	pki, err := harness.NewPKI(filepath.Join(dir, "pki"), "zkv")
	if err != nil {
		t.Fatal(err)
	}
	authPath, authText := writeAuthFile(t, dir)
	clientTLS, err := pki.ClientTLS(false)
	if err != nil {
		t.Fatal(err)
	}
	n := startSecureNode(t, clientTLS, "--http-tls-cert", pki.ServerCert, "--http-tls-key", pki.ServerKey,
		"--http-auth-file", authPath, "--http-pprof")
	h := newHTTPClient(t, n.URL(), clientTLS)
	alice, bob, ci := "alice:"+alicePW, "bob:"+bobPW, "Bearer "+ciToken
	h.waitLeader(alice)

	t.Run("TLS", func(t *testing.T) {
		if _, _, _, err := newHTTPClient(t, n.URL(), nil).do("GET", "/healthz", "", ""); err == nil {
			t.Error("a client without the CA connected")
		}
		if _, _, _, err := newHTTPClient(t, "http://"+n.HTTPAddr(), nil).do("GET", "/v1/status", alice, ""); err == nil {
			// A plain-HTTP request gets a 400 from the TLS server, not data.
			status, _, _, _ := newHTTPClient(t, "http://"+n.HTTPAddr(), nil).do("GET", "/v1/status", alice, "")
			if status == http.StatusOK {
				t.Error("plain HTTP served")
			}
		}
		h.must("GET", "/healthz", "", "", http.StatusOK)
		h.must("GET", "/readyz", "", "", http.StatusOK)
	})

	t.Run("401 and 403 everywhere", func(t *testing.T) {
		endpoints := []struct{ method, path string }{
			{"GET", "/v1/kv/a"}, {"HEAD", "/v1/kv/a"}, {"PUT", "/v1/kv/a"}, {"POST", "/v1/kv/a"},
			{"DELETE", "/v1/kv/a"}, {"GET", "/v1/status"}, {"PUT", "/v1/status"}, {"GET", "/v1/nothing"},
			{"GET", "/v1/history/a"}, {"GET", "/v1/changes"}, {"GET", "/v1/watch?after=x"}, {"POST", "/v1/compact"},
			{"GET", "/debug/pprof/"}, {"GET", "/debug/pprof/cmdline"},
			{"GET", "/v1/cluster"}, {"GET", "/"}, {"GET", "/ui/app.js"},
		}
		bad := []string{"", "alice:wrong-password", "nobody:" + alicePW, "Bearer not-a-token", "Bearer " + alicePW,
			"Raw Digest username=alice", "Raw Basic !!!notbase64", "bob:" + alicePW}
		for _, e := range endpoints {
			for _, cred := range bad {
				status, hdr, body, err := h.do(e.method, e.path, cred, "x")
				if err != nil {
					t.Fatalf("%s %s as %q: %v", e.method, e.path, credName(cred), err)
				}
				if status != http.StatusUnauthorized || len(hdr.Values("WWW-Authenticate")) != 2 {
					t.Fatalf("%s %s as %q: status %d, WWW-Authenticate %q; want 401 and both schemes", e.method, e.path, credName(cred), status, hdr.Values("WWW-Authenticate"))
				}
				if e.method != "HEAD" && errorCode(t, body) != bus.CodeUnauthorized {
					t.Fatalf("%s %s: body %s", e.method, e.path, body)
				}
			}
			// Read-only users: reads pass, everything else is forbidden.
			for _, cred := range []string{bob, ci, "ci:" + ciToken} {
				status, _, body, err := h.do(e.method, e.path, cred, "x")
				if err != nil {
					t.Fatal(err)
				}
				read := (e.method == "GET" || e.method == "HEAD") && !strings.HasPrefix(e.path, "/debug/")
				if read && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
					t.Errorf("%s %s as %s: status %d, want it allowed", e.method, e.path, credName(cred), status)
				}
				if !read && (status != http.StatusForbidden || errorCode(t, body) != bus.CodeForbidden) {
					t.Errorf("%s %s as %s: status %d %s, want 403 forbidden", e.method, e.path, credName(cred), status, body)
				}
			}
		}
		h.must("PUT", "/v1/kv/a", alice, "1", http.StatusOK)
		h.must("GET", "/v1/kv/a", bob, "", http.StatusOK)
		h.must("GET", "/v1/kv/a", ci, "", http.StatusOK)
		h.must("GET", "/debug/pprof/cmdline", alice, "", http.StatusOK)
		h.must("DELETE", "/v1/kv/a", alice, "", http.StatusOK)
		h.must("GET", "/v1/kv/a", bob, "", http.StatusNotFound)
		h.must("POST", "/v1/kv/a", alice, "", http.StatusMethodNotAllowed)
		h.must("PUT", "/v1/kv/a", alice, "1", http.StatusOK) // the later subtests read it
	})

	t.Run("bad-credential burst", func(t *testing.T) {
		const total, workers = 10000, 32
		var next, wrong atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := next.Add(1); i <= total; i = next.Add(1) {
					cred := fmt.Sprintf("alice:wrong-%d", i)
					switch i % 3 {
					case 1:
						cred = fmt.Sprintf("Bearer wrong-token-%d", i)
					case 2:
						cred = fmt.Sprintf("user%d:pw", i)
					}
					status, _, _, err := h.do("GET", "/v1/kv/a", cred, "")
					if err != nil || status != http.StatusUnauthorized {
						wrong.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("request %d: status %d, err %v", i, status, err))
					}
				}
			})
		}
		// Meanwhile a good (cached) client is served.
		for range 20 {
			h.must("GET", "/v1/kv/a", alice, "", http.StatusOK)
		}
		wg.Wait()
		if wrong.Load() > 0 {
			t.Fatalf("%d of %d bad requests not answered 401; first: %v", wrong.Load(), total, firstErr.Load())
		}
		h.must("PUT", "/v1/kv/b", alice, "2", http.StatusOK)
		h.must("GET", "/v1/kv/b", bob, "", http.StatusOK)
	})

	t.Run("no secrets in log or status", func(t *testing.T) {
		_, status := h.must("GET", "/v1/status", bob, "", http.StatusOK)
		logText, err := os.ReadFile(n.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{alicePW, bobPW, ciToken}
		for _, line := range strings.Split(strings.TrimSpace(authText), "\n")[1:] {
			secrets = append(secrets, strings.Fields(line)[2]) // the hashes too
		}
		for _, s := range secrets {
			if strings.Contains(string(logText), s) || strings.Contains(status, s) {
				t.Errorf("a secret (%d chars) is in the log or the status", len(s))
			}
		}
		if strings.Contains(status, "http_warning") {
			t.Errorf("status warns of a loopback, authenticated API: %s", status)
		}
	})

	t.Run("kvctl over HTTPS", func(t *testing.T) {
		kvctl := func(env []string, args ...string) (int, string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, testenv.Binaries(t).KVCtl, append([]string{"--http", n.URL(), "--http-ca", pki.CA}, args...)...)
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("kvctl %v: %v", args, err)
			}
			return cmd.ProcessState.ExitCode(), string(out)
		}
		asAlice := []string{"ZKV_HTTP_USER=alice", "ZKV_HTTP_PASSWORD=" + alicePW}
		if code, out := kvctl(asAlice, "put", "k", "v1"); code != 0 || !strings.Contains(out, "OK k revision=") {
			t.Errorf("put: exit %d: %s", code, out)
		}
		if code, out := kvctl(nil, "--http-user", "bob", "--http-password", bobPW, "get", "k"); code != 0 || !strings.HasPrefix(out, "v1\n") || !strings.Contains(out, "n1 (leader, epoch 1, stale: no) answered") {
			t.Errorf("get as bob: exit %d: %q", code, out)
		}
		if code, out := kvctl([]string{"ZKV_HTTP_TOKEN=" + ciToken}, "status"); code != 0 || !strings.Contains(out, "leader") {
			t.Errorf("status with a token: exit %d: %s", code, out)
		}
		if code, out := kvctl([]string{"ZKV_HTTP_TOKEN=" + ciToken}, "get", "missing"); code != 3 {
			t.Errorf("get missing: exit %d, want 3: %s", code, out)
		}
		if code, out := kvctl(nil, "--http-user", "bob", "--http-password", bobPW, "put", "k", "v2"); code != 1 || !strings.Contains(out, "forbidden") {
			t.Errorf("put as bob: exit %d: %s", code, out)
		}
		if code, out := kvctl(nil, "--http-user", "alice", "--http-password", "wrong-pw", "get", "k"); code != 1 || !strings.Contains(out, "unauthorized") {
			t.Errorf("wrong password: exit %d: %s", code, out)
		}
		if code, out := kvctl(nil, "--http-ca", "", "get", "k"); code != 1 {
			t.Errorf("without the CA: exit %d, want 1: %s", code, out)
		}
	})

	t.Run("SIGHUP", func(t *testing.T) {
		serial := func() (string, error) {
			conn, err := tls.Dial("tcp", n.HTTPAddr(), clientTLS)
			if err != nil {
				return "", err
			}
			defer conn.Close()
			return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
		}
		before, err := serial()
		if err != nil {
			t.Fatal(err)
		}
		// A broken certificate: logged, the old one kept, still serving.
		if err := os.WriteFile(pki.ServerCert, []byte("not a certificate"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := n.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 10*time.Second, "the failed reload logged", func() error {
			if !strings.Contains(n.LogTail(200), "http reload failed") {
				return errors.New("not yet")
			}
			return nil
		})
		if got, err := serial(); err != nil || got != before {
			t.Fatalf("after a failed reload: serial %s, %v; want the old %s", got, err, before)
		}
		h.must("GET", "/v1/kv/a", alice, "", http.StatusOK)

		if err := pki.Issue(pki.ServerCert, pki.ServerKey, "localhost", true); err != nil {
			t.Fatal(err)
		}
		if err := n.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 10*time.Second, "the new certificate", func() error {
			got, err := serial()
			if err != nil {
				return err
			}
			if got == before {
				return errors.New("old certificate still served")
			}
			return nil
		})
		if !n.Running() {
			t.Fatal("SIGHUP killed the node")
		}
		h.must("PUT", "/v1/kv/c", alice, "3", http.StatusOK)
	})
}

// TestHTTPClientCertificates: with --http-tls-client-ca a client without a
// certificate fails the handshake; with one, it is served.
func TestHTTPClientCertificates(t *testing.T) {
	pki, err := harness.NewPKI(filepath.Join(t.TempDir(), "pki"), "zkv")
	if err != nil {
		t.Fatal(err)
	}
	withCert, err := pki.ClientTLS(true)
	if err != nil {
		t.Fatal(err)
	}
	n := startSecureNode(t, withCert, "--http-tls-cert", pki.ServerCert, "--http-tls-key", pki.ServerKey,
		"--http-tls-client-ca", pki.CA)
	withoutCert, err := pki.ClientTLS(false)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _, err := newHTTPClient(t, n.URL(), withoutCert).do("GET", "/v1/status", "", ""); err == nil {
		t.Fatalf("a client without a certificate got status %d", status)
	}
	h := newHTTPClient(t, n.URL(), withCert)
	h.waitLeader("")
	h.must("PUT", "/v1/kv/a", "", "1", http.StatusOK)
	h.must("GET", "/v1/kv/a", "", "", http.StatusOK)
	h.must("GET", "/debug/pprof/", "", "", http.StatusNotFound) // off without --http-pprof
	if err := n.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the reload logged", func() error {
		if !strings.Contains(n.LogTail(200), "http settings reloaded") {
			return errors.New("not yet")
		}
		return nil
	})
	h.must("GET", "/v1/status", "", "", http.StatusOK)
}

// TestHTTPOpenBindWarns: a node bound to every interface without auth warns
// in its log and its status, survives SIGHUP with nothing to reload, and
// refuses --http-pprof there.
func TestHTTPOpenBindWarns(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	n := testenv.StartNode(t, harness.NodeOptions{
		ID: "n1", Host: "0.0.0.0", ZooKeeper: zk.Addr(), NATSURL: ns.URL(), SessionTimeout: stableTimeout,
	})
	local := newHTTPClient(t, "http://127.0.0.1:"+strings.TrimPrefix(n.HTTPAddr(), "0.0.0.0:"), nil)
	_, body := local.must("GET", "/v1/status", "", "", http.StatusOK)
	var st bus.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.HTTPWarning, "no auth") {
		t.Errorf("status http_warning = %q, want a warning", st.HTTPWarning)
	}
	if tail := n.LogTail(100); !strings.Contains(tail, "level=WARN") || !strings.Contains(tail, "without authentication") {
		t.Errorf("no WARN about the open bind in the log:\n%s", tail)
	}
	if err := n.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the SIGHUP logged", func() error {
		if !strings.Contains(n.LogTail(100), "nothing to reload") {
			return errors.New("not yet")
		}
		return nil
	})
	local.must("GET", "/healthz", "", "", http.StatusOK)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Binaries(t).KVServer, "--id", "p1", "--host", "0.0.0.0", "--port", "0",
		"--zookeeper", zk.Addr(), "--nats", ns.URL(), "--http-pprof")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "pprof") {
		t.Fatalf("kvserver --http-pprof on 0.0.0.0 without auth: %v, want exit 2 naming pprof:\n%s", err, out)
	}
}

// TestHTTPRepliesBeforeWriteTimeout: a min_revision read that waits longer
// than a forwarded write's deadline still gets "stale", and a write through
// a follower whose leader does not answer gets a JSON error, not an empty
// reply.
func TestHTTPRepliesBeforeWriteTimeout(t *testing.T) {
	c := startCluster(t, 2, stableTimeout)
	leader, _ := c.waitLeader("", 15*time.Second)
	var follower *harness.Node
	for id, n := range c.nodes {
		if id != leader {
			follower = n
		}
	}
	h := newHTTPClient(t, follower.URL(), nil)
	h.c.Timeout = time.Minute

	var wg sync.WaitGroup
	wg.Go(func() {
		// 12 s: past the old write timeout (ForwardTimeout + 5 s).
		status, _, body, err := h.do("GET", "/v1/kv/a?consistency=min_revision&min_revision=1000000&wait_ms=12000", "", "")
		if err != nil || status != http.StatusServiceUnavailable || !strings.Contains(body, `"stale"`) {
			t.Errorf("long min_revision read: status %d, body %q, err %v; want 503 stale", status, body, err)
		}
	})
	if err := c.nodes[leader].Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.nodes[leader].Resume() }()
	// The forward waits ForwardTimeout + WriteTimeout (10 s) for the paused
	// leader: as long as the old write timeout.
	status, _, body, err := h.do("PUT", "/v1/kv/a", "", "1")
	if err != nil {
		t.Fatalf("write through %s with the leader paused: %v", follower.ID(), err)
	}
	if status < 400 {
		t.Fatalf("write with the leader paused: status %d %s", status, body)
	}
	t.Logf("write with the leader paused: %d %s", status, body)
	errorCode(t, body)
	wg.Wait()
}
