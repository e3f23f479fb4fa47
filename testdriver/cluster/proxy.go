package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Proxy is an in-process toxiproxy TCP proxy on 127.0.0.1 in front of one
// upstream address. It can delay both directions (a remote ZooKeeper) and
// be cut: Cut closes every connection through it and refuses new ones
// until Heal. A Local cluster gives each server its own Proxy to
// ZooKeeper or NATS when asked, so one server can be cut off from one of
// them while everything else stays connected.
type Proxy struct {
	p *toxiproxy.Proxy

	mu     sync.Mutex
	cut    bool
	closed bool
}

// NewProxy listens on a free loopback port and forwards to upstream,
// adding latency ± jitter to each direction when latency is positive.
func NewProxy(name, upstream string, latency, jitter time.Duration) (*Proxy, error) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	if latency > 0 {
		for _, dir := range []string{"upstream", "downstream"} {
			spec := fmt.Sprintf(`{"name":"latency_%s","type":"latency","stream":%q,"toxicity":1,"attributes":{"latency":%d,"jitter":%d}}`,
				dir, dir, latency.Milliseconds(), jitter.Milliseconds())
			if _, err := p.Toxics.AddToxicJson(strings.NewReader(spec)); err != nil {
				p.Stop()
				return nil, fmt.Errorf("proxy %s: add %s latency: %w", name, dir, err)
			}
		}
	}
	return &Proxy{p: p}, nil
}

// Addr is the address to connect to instead of upstream. It stays the
// same across Cut and Heal.
func (x *Proxy) Addr() string { return x.p.Listen }

// Cut closes every connection through the proxy and lets no new one
// through until Heal: a new connection is accepted and reset as soon as
// either side sends a byte. The proxy keeps its port all along (it is
// listening again before Cut returns), so no other socket can take it
// while the cut lasts and Heal cannot fail to listen.
func (x *Proxy) Cut() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.cut {
		return nil
	}
	x.p.Stop() // closes every open connection
	if err := x.p.Start(); err != nil {
		return fmt.Errorf("proxy %s: listen again on %s: %w", x.p.Name, x.p.Listen, err)
	}
	for _, dir := range []string{"upstream", "downstream"} {
		spec := fmt.Sprintf(`{"name":"cut_%s","type":"reset_peer","stream":%q,"toxicity":1,"attributes":{"timeout":0}}`, dir, dir)
		if _, err := x.p.Toxics.AddToxicJson(strings.NewReader(spec)); err != nil {
			return fmt.Errorf("proxy %s: cut %s: %w", x.p.Name, dir, err)
		}
	}
	x.cut = true
	return nil
}

// Heal lets connections through again.
func (x *Proxy) Heal() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.cut {
		return nil
	}
	for _, dir := range []string{"upstream", "downstream"} {
		if err := x.p.Toxics.RemoveToxic(context.Background(), "cut_"+dir); err != nil {
			return fmt.Errorf("proxy %s: heal %s: %w", x.p.Name, dir, err)
		}
	}
	x.cut = false
	return nil
}

// Close stops listening and closes every connection.
func (x *Proxy) Close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.closed {
		x.closed = true
		x.p.Stop()
	}
}
