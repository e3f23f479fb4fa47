package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/zkvstore/zkv/internal/httpauth"
)

// httpSecurity holds the HTTP API's TLS settings and users, both
// replaceable at run time by ReloadHTTP.
type httpSecurity struct {
	cfg Config
	// tls is the current server TLS config, nil without TLS.
	tls atomic.Pointer[tls.Config]
	// users checks credentials, nil without an auth file.
	users *httpauth.Verifier
	// warning is Config.httpOpenWarning, fixed at start.
	warning string
	// reloadMu serialises reloads.
	reloadMu sync.Mutex
}

// newHTTPSecurity loads the TLS files and the auth file of cfg.
func newHTTPSecurity(cfg Config) (*httpSecurity, error) {
	h := &httpSecurity{cfg: cfg, warning: cfg.httpOpenWarning()}
	tlsCfg, file, err := h.load()
	if err != nil {
		return nil, err
	}
	h.tls.Store(tlsCfg)
	if file != nil {
		// bcrypt uses one CPU per comparison: at most as many as there
		// are, so bad passwords cannot take the whole machine.
		h.users = httpauth.NewVerifier(file, runtime.GOMAXPROCS(0))
	}
	return h, nil
}

// load reads every configured file; nil results for what is not
// configured.
func (h *httpSecurity) load() (*tls.Config, *httpauth.File, error) {
	var (
		tlsCfg *tls.Config
		file   *httpauth.File
		errs   []error
		err    error
	)
	if h.cfg.HTTPTLSCert != "" {
		if tlsCfg, err = loadTLS(h.cfg.HTTPTLSCert, h.cfg.HTTPTLSKey, h.cfg.HTTPTLSClientCA); err != nil {
			errs = append(errs, err)
		}
	}
	if h.cfg.HTTPAuthFile != "" {
		if file, err = httpauth.LoadFile(h.cfg.HTTPAuthFile); err != nil {
			errs = append(errs, err)
		}
	}
	return tlsCfg, file, errors.Join(errs...)
}

// serverTLS is the config of the TLS listener: each handshake takes the
// current config, so a reload applies to new connections at once.
func (h *httpSecurity) serverTLS() *tls.Config {
	if h.tls.Load() == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return h.tls.Load(), nil
		},
	}
}

// reload re-reads every file. It replaces nothing unless every file
// loads; it reports whether there was anything to reload.
func (h *httpSecurity) reload() (bool, error) {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	if h.cfg.HTTPTLSCert == "" && h.cfg.HTTPAuthFile == "" {
		return false, nil
	}
	tlsCfg, file, err := h.load()
	if err != nil {
		return true, fmt.Errorf("reload http settings (old ones kept): %w", err)
	}
	if tlsCfg != nil {
		h.tls.Store(tlsCfg)
	}
	if file != nil {
		h.users.Replace(file)
	}
	return true, nil
}

// ReloadHTTP re-reads the HTTP API's certificate, key, client CAs and auth
// file. If any fails to load, it logs and returns the error and keeps
// every old setting. New connections and requests use the new settings;
// open connections keep their TLS session. Safe to call at any time, from
// any goroutine (kvserver calls it on SIGHUP).
func (s *Server) ReloadHTTP() error {
	did, err := s.web.reload()
	switch {
	case err != nil:
		s.log.Error("http reload failed; keeping the old settings", "err", err)
	case !did:
		s.log.Info("http reload: nothing to reload (no tls or auth file)")
	default:
		users := 0
		if s.web.users != nil {
			users = s.web.users.Users()
		}
		s.log.Info("http settings reloaded", "tls", s.web.tls.Load() != nil, "auth_users", users)
	}
	return err
}

// httpWarning is the status field that warns of an open HTTP API.
func (s *Server) httpWarning() string {
	if s.web == nil {
		return ""
	}
	return s.web.warning
}
