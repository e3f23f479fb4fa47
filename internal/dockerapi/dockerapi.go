// Package dockerapi is a small client of the Docker Engine API over its
// unix socket: the six calls the test driver's compose cluster needs
// (list containers by label, inspect, kill with a signal, start, wait,
// logs taken out of the engine's stream frames) and a typed API error.
// Package dockertest beside it fakes the engine for tests.
//
// Why not the maintained client, github.com/moby/moby/client (v0.6.2)?
// For these six calls it would bring 19 more modules into go.mod (among
// them OpenTelemetry's otel, otelhttp, metric and trace, containerd's
// errdefs, opencontainers' image-spec, go-winio), 49 more lines of go.sum,
// 130 more edges in `go mod graph`, an upgrade of google.golang.org/protobuf,
// 62 more packages in cmd/testdriver's build and 1.7 MB (+3.7 %) of
// binary. The engine API it speaks here is stable and versioned (set
// Client's version to pin one), and the fake engine is needed for tests
// either way; about 250 lines of net/http are the cheaper dependency.
package dockerapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The labels docker compose (v1 and v2) puts on the containers it creates.
const (
	LabelComposeProject = "com.docker.compose.project"
	LabelComposeService = "com.docker.compose.service"
	LabelComposeOneOff  = "com.docker.compose.oneoff"
)

// Client is a client of the Docker Engine API on a unix socket. It is safe
// for concurrent use.
type Client struct {
	hc     *http.Client
	socket string
	prefix string // "" or "/v1.41"
}

// APIError is a Docker Engine API answer other than 2xx (and 304).
type APIError struct {
	Method, Path string
	StatusCode   int
	Message      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("docker engine: %s %s: %d %s", e.Method, e.Path, e.StatusCode, e.Message)
}

// New returns a client of the engine on socket. version is the Engine API
// version of every request ("1.41"); "" sends unversioned paths, which the
// engine serves with its own version.
func New(socket, version string) *Client {
	prefix := ""
	if version != "" {
		prefix = "/v" + strings.TrimPrefix(version, "v")
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{hc: &http.Client{Transport: tr}, socket: socket, prefix: prefix}
}

// Close releases the client's idle connections.
func (d *Client) Close() { d.hc.CloseIdleConnections() }

// do sends one request and decodes a JSON answer into out (when not nil;
// an io.Writer gets the body as it is). Answers 304 (nothing to do) count
// as success.
func (d *Client) do(ctx context.Context, method, path string, query url.Values, out any) error {
	u := "http://docker" + d.prefix + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return fmt.Errorf("docker engine: %w", err)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return fmt.Errorf("docker engine on %s: %w", d.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var m struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &m) == nil && m.Message != "" {
			msg = m.Message
		}
		return &APIError{Method: method, Path: path, StatusCode: resp.StatusCode, Message: msg}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		if _, err := io.Copy(w, resp.Body); err != nil {
			return fmt.Errorf("docker engine: %s %s: %w", method, path, err)
		}
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("docker engine: %s %s: decode: %w", method, path, err)
	}
	return nil
}

// Summary is one entry of GET /containers/json.
type Summary struct {
	ID     string            `json:"Id"`
	Names  []string          `json:"Names"`
	Labels map[string]string `json:"Labels"`
	State  string            `json:"State"`
}

// DisplayName is the container's first name without the leading "/", or
// its ID when it has none.
func (s Summary) DisplayName() string {
	if len(s.Names) > 0 {
		return strings.TrimPrefix(s.Names[0], "/")
	}
	return s.ID
}

// Container is the part of GET /containers/{id}/json the driver uses.
type Container struct {
	ID              string          `json:"Id"`
	Name            string          `json:"Name"`
	State           State           `json:"State"`
	Config          Config          `json:"Config"`
	NetworkSettings NetworkSettings `json:"NetworkSettings"`
}

// State is a container's state.
type State struct {
	Running  bool `json:"Running"`
	ExitCode int  `json:"ExitCode"`
}

// Config is a container's configuration.
type Config struct {
	Image  string            `json:"Image"`
	Env    []string          `json:"Env"`
	Labels map[string]string `json:"Labels"`
	Tty    bool              `json:"Tty"`
}

// NetworkSettings are a running container's published ports ("8001/tcp")
// and its networks by name.
type NetworkSettings struct {
	Ports    map[string][]PortBinding `json:"Ports"`
	Networks map[string]Network       `json:"Networks"`
}

// PortBinding is a host address a container port is published on.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// Network is a container's place in one network.
type Network struct {
	IPAddress string `json:"IPAddress"`
}

// DisplayName is the container's name without the leading "/".
func (c Container) DisplayName() string { return strings.TrimPrefix(c.Name, "/") }

// Env maps the container's environment variables.
func (c Container) Env() map[string]string {
	m := make(map[string]string, len(c.Config.Env))
	for _, kv := range c.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// List returns every container (running or not) that has all the labels
// ("key=value").
func (d *Client) List(ctx context.Context, labels ...string) ([]Summary, error) {
	filters, err := json.Marshal(map[string][]string{"label": labels})
	if err != nil {
		return nil, fmt.Errorf("docker engine: %w", err)
	}
	var out []Summary
	q := url.Values{"all": {"1"}, "filters": {string(filters)}}
	if err := d.do(ctx, http.MethodGet, "/containers/json", q, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Inspect returns the container with ID (or name) id.
func (d *Client) Inspect(ctx context.Context, id string) (Container, error) {
	var out Container
	err := d.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/json", nil, &out)
	return out, err
}

// Kill sends signal ("SIGTERM") to the container; one that does not run is
// not an error.
func (d *Client) Kill(ctx context.Context, id, signal string) error {
	err := d.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/kill", url.Values{"signal": {signal}}, nil)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusConflict {
		return nil // "is not running"
	}
	return err
}

// Start starts the container; one that runs already is not an error.
func (d *Client) Start(ctx context.Context, id string) error {
	return d.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/start", nil, nil)
}

// Wait blocks until the container does not run and returns its exit code.
func (d *Client) Wait(ctx context.Context, id string) (int, error) {
	var out struct {
		StatusCode int `json:"StatusCode"`
		Error      *struct {
			Message string `json:"Message"`
		} `json:"Error"`
	}
	err := d.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/wait", url.Values{"condition": {"not-running"}}, &out)
	if err != nil {
		return 0, err
	}
	if out.Error != nil && out.Error.Message != "" {
		return out.StatusCode, fmt.Errorf("docker engine: wait %s: %s", id, out.Error.Message)
	}
	return out.StatusCode, nil
}

// Logs returns the container's stdout and stderr with docker's timestamps,
// the last tail lines (all when tail < 0). Without a TTY the engine
// multiplexes both streams in frames, which are taken apart here.
func (d *Client) Logs(ctx context.Context, id string, tty bool, tail int) (string, error) {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "timestamps": {"1"}, "tail": {"all"}}
	if tail >= 0 {
		q.Set("tail", strconv.Itoa(tail))
	}
	var raw strings.Builder
	if err := d.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/logs", q, &raw); err != nil {
		return "", err
	}
	if tty {
		return raw.String(), nil
	}
	return Demux(raw.String())
}

// Demux joins the payloads of the engine's stream frames: an 8-byte header
// (stream, three zero bytes, big-endian payload size), then the payload.
// On a cut stream it returns what it has and an error.
func Demux(s string) (string, error) {
	var out strings.Builder
	r := bufio.NewReader(strings.NewReader(s))
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if errors.Is(err, io.EOF) {
				return out.String(), nil
			}
			return out.String(), fmt.Errorf("log stream: %w", err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		if _, err := io.CopyN(&out, r, n); err != nil {
			return out.String(), fmt.Errorf("log stream: %w", err)
		}
	}
}
