package node

import (
	"errors"
	"net/http"
	"strings"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/httpauth"
)

// authChallenge is the WWW-Authenticate of a 401: both schemes work.
var authChallenge = []string{`Basic realm="zkv", charset="UTF-8"`, `Bearer realm="zkv"`}

// requireAuth wraps next so that, with an auth file, every request needs
// valid credentials (401 otherwise) and a role that allows it (403
// otherwise): GET and HEAD need read, anything else readwrite. Without an
// auth file it is next.
func (s *Server) requireAuth(next http.Handler) http.Handler {
	users := s.web.users
	if users == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := authenticate(users, r)
		if err != nil {
			for _, c := range authChallenge {
				w.Header().Add("WWW-Authenticate", c)
			}
			writeError(w, err)
			return
		}
		need := httpauth.RoleReadWrite
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && !strings.HasPrefix(r.URL.Path, "/debug/") {
			need = httpauth.RoleRead
		}
		if !u.Role.Allows(need) {
			writeError(w, bus.Errorf(bus.CodeForbidden, "user %q has role %s; %s %s needs %s", u.Name, u.Role, r.Method, r.URL.Path, need))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate checks the Authorization header: Basic (name and password
// or token) or Bearer (token). Errors are *bus.Error with code
// unauthorized; they never include the secret.
func authenticate(users *httpauth.Verifier, r *http.Request) (*httpauth.User, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, bus.Errorf(bus.CodeUnauthorized, "credentials required (Basic or Bearer)")
	}
	var (
		u   *httpauth.User
		err error
	)
	if name, secret, ok := r.BasicAuth(); ok {
		u, err = users.Basic(name, secret)
	} else if scheme, token, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		u, err = users.Bearer(strings.TrimSpace(token))
	} else {
		return nil, bus.Errorf(bus.CodeUnauthorized, "unsupported Authorization scheme: want Basic or Bearer")
	}
	switch {
	case err == nil:
		return u, nil
	case errors.Is(err, httpauth.ErrBusy):
		return nil, bus.Errorf(bus.CodeUnauthorized, "credentials not checked: too many password checks in flight, retry")
	}
	return nil, bus.Errorf(bus.CodeUnauthorized, "invalid credentials")
}
