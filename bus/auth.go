package bus

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Auth is how a client or server authenticates to NATS and verifies it.
// The zero value connects without credentials or TLS. At most one of
// User/Password, Token, NKeySeedFile and CredsFile may be set.
type Auth struct {
	// User and Password for user/password authentication.
	User, Password string
	// Token for token authentication.
	Token string
	// NKeySeedFile is a file holding an NKey user seed ("SU...").
	NKeySeedFile string
	// CredsFile is a decentralized-auth credentials file (JWT and seed).
	CredsFile string
	// TLSCA is a PEM file of CAs that verify the server; setting it
	// requires TLS.
	TLSCA string
	// TLSCert and TLSKey are a client certificate and key (mutual TLS).
	TLSCert, TLSKey string
}

// ErrAuthConfig means an Auth is contradictory or incomplete.
var ErrAuthConfig = errors.New("invalid NATS auth settings")

// Options returns the nats.go options for a.
func (a Auth) Options() ([]nats.Option, error) {
	methods := 0
	for _, set := range []bool{a.User != "" || a.Password != "", a.Token != "", a.NKeySeedFile != "", a.CredsFile != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		return nil, fmt.Errorf("%w: choose one of user/password, token, nkey and creds", ErrAuthConfig)
	}
	if (a.User == "") != (a.Password == "") {
		return nil, fmt.Errorf("%w: user and password go together", ErrAuthConfig)
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		return nil, fmt.Errorf("%w: TLS certificate and key go together", ErrAuthConfig)
	}
	var opts []nats.Option
	switch {
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.Token != "":
		opts = append(opts, nats.Token(a.Token))
	case a.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%w: nkey seed %s: %w", ErrAuthConfig, a.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case a.CredsFile != "":
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	if a.TLSCA != "" {
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	if a.TLSCert != "" {
		opts = append(opts, nats.ClientCert(a.TLSCert, a.TLSKey))
	}
	return opts, nil
}
