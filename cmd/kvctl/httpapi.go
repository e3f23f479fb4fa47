package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zkvstore/zkv/bus"
)

// httpOptions are the global flags of the HTTP face (--http...).
type httpOptions struct {
	url, user, password, token, ca, cert, key string
}

// enabled reports whether kvctl talks HTTP instead of NATS.
func (o httpOptions) enabled() bool { return o.url != "" }

// httpAPI is a client of one kvserver's HTTP API.
type httpAPI struct {
	base   *url.URL
	opts   httpOptions
	client *http.Client
}

// maxReplyBytes bounds a reply body: a value, or a list page with every
// byte JSON-escaped, and its envelope.
const maxReplyBytes = 6*max(bus.MaxValueBytes, bus.ListPageBytes) + 64<<10

// newHTTPAPI checks the options and builds the client.
func newHTTPAPI(o httpOptions) (*httpAPI, error) {
	base, err := url.Parse(strings.TrimRight(o.url, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("--http %q: want http://HOST:PORT or https://HOST:PORT", o.url)
	}
	if o.token != "" && (o.user != "" || o.password != "") {
		return nil, errors.New("--http-token and --http-user/--http-password: give one")
	}
	if (o.user == "") != (o.password == "") {
		return nil, errors.New("--http-user and --http-password go together")
	}
	if (o.cert == "") != (o.key == "") {
		return nil, errors.New("--http-cert and --http-key go together")
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.ca != "" {
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, fmt.Errorf("--http-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--http-ca %s: no PEM certificates", o.ca)
		}
		tlsCfg.RootCAs = pool
	}
	if o.cert != "" {
		cert, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, fmt.Errorf("--http-cert/--http-key: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	if base.Scheme == "http" && (o.ca != "" || o.cert != "") {
		return nil, fmt.Errorf("--http %s is plain HTTP: --http-ca and --http-cert need https://", o.url)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &httpAPI{base: base, opts: o, client: &http.Client{Transport: tr}}, nil
}

// do sends one request and decodes the reply into v; an error body becomes
// a *bus.Error. It returns the HTTP status.
func (a *httpAPI) do(ctx context.Context, method, path string, query url.Values, body string, v any) (int, error) {
	u := *a.base
	u.Path += path
	u.RawPath = ""
	u.RawQuery = query.Encode()
	var r io.Reader
	if method == http.MethodPut {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return 0, err
	}
	a.authorize(req)
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %s: %w", bus.ErrUnavailable, method, u.Redacted(), err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, a.decode(resp, method, &u, v)
}

// authorize sets the request's credentials, if any.
func (a *httpAPI) authorize(req *http.Request) {
	switch {
	case a.opts.token != "":
		req.Header.Set("Authorization", "Bearer "+a.opts.token)
	case a.opts.user != "":
		req.SetBasicAuth(a.opts.user, a.opts.password)
	}
}

// decode reads the reply to method u into v; an error body becomes a
// *bus.Error, another status past 299 (but 404) an error.
func (a *httpAPI) decode(resp *http.Response, method string, u *url.URL, v any) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return fmt.Errorf("%w: read reply: %w", bus.ErrUnavailable, err)
	}
	if err := bus.DecodeReply(data, v); err != nil {
		return err
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("%s %s: %s", method, u.Redacted(), resp.Status)
	}
	return nil
}

// keyPath is the path of key, unescaped: do escapes it once, keeping a
// key's "/" as the path separators the server's {key...} takes back.
func keyPath(key string) string { return "/v1/kv/" + key }

// write sends w as PUT (create: ?create=true), DELETE (?prefix=true,
// ?purge=true) or, for a compact, POST /v1/compact, with its acks,
// if_revision and time to live in the query.
func (a *httpAPI) write(ctx context.Context, w bus.WriteRequest) (bus.WriteReply, error) {
	q := url.Values{}
	if w.Acks != "" {
		q.Set("acks", w.Acks)
	}
	if w.IfRevision != nil {
		q.Set("if_revision", strconv.FormatUint(*w.IfRevision, 10))
	}
	if w.TTLMS > 0 {
		q.Set("ttl", (time.Duration(w.TTLMS) * time.Millisecond).String())
	}
	method, path := http.MethodPut, keyPath(w.Key)
	switch w.Op {
	case bus.OpDelete:
		method = http.MethodDelete
		if w.Prefix {
			q.Set("prefix", "true")
		}
	case bus.OpPurge:
		method = http.MethodDelete
		q.Set("purge", "true")
	case bus.OpCreate:
		q.Set("create", "true")
	case bus.OpCompact:
		method, path = http.MethodPost, "/v1/compact"
		if w.Revision > 0 {
			q.Set("revision", strconv.FormatUint(w.Revision, 10))
		} else {
			q.Set("age", (time.Duration(w.AgeMS) * time.Millisecond).String())
		}
	}
	var reply bus.WriteReply
	_, err := a.do(ctx, method, path, q, w.Value, &reply)
	return reply, err
}

func (a *httpAPI) get(ctx context.Context, key, consistency string, minRevision, rev uint64) (bus.ReadReply, error) {
	q := url.Values{}
	if consistency != "" && consistency != bus.ConsistencyLocal {
		q.Set("consistency", consistency)
	}
	if minRevision > 0 {
		q.Set("min_revision", strconv.FormatUint(minRevision, 10))
	}
	if rev > 0 {
		q.Set("revision", strconv.FormatUint(rev, 10))
	}
	var reply bus.ReadReply
	_, err := a.do(ctx, http.MethodGet, keyPath(key), q, "", &reply)
	return reply, err
}

func (a *httpAPI) status(ctx context.Context) (bus.Status, error) {
	var st bus.Status
	_, err := a.do(ctx, http.MethodGet, "/v1/status", nil, "", &st)
	return st, err
}

// cluster asks the node for its view of the cluster (GET /v1/cluster);
// a server older than that endpoint answers 404, and then its own status
// is the view's one row.
func (a *httpAPI) cluster(ctx context.Context) (bus.ClusterView, error) {
	var v bus.ClusterView
	code, err := a.do(ctx, http.MethodGet, "/v1/cluster", nil, "", &v)
	if code == http.StatusNotFound {
		st, err := a.status(ctx)
		if err != nil {
			return v, err
		}
		return bus.ClusterView{Node: st.Node, Leader: st.Leader, Epoch: st.Epoch,
			Members: []bus.MemberView{{Status: st, Reachable: true}}}, nil
	}
	return v, err
}
