// Package cliflags holds the command-line flags that several zkv commands
// share, so each is named, documented and read from the environment the
// same way everywhere, and the version string that --version prints.
package cliflags

import (
	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/bus"
)

// NATSAuth returns the flags of bus.Auth, each with a ZKV_NATS_* variable.
func NATSAuth() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "nats-user", Usage: "NATS user name (with --nats-password)", EnvVars: []string{"ZKV_NATS_USER"}, Category: "NATS auth"},
		&cli.StringFlag{Name: "nats-password", Usage: "NATS password", EnvVars: []string{"ZKV_NATS_PASSWORD"}, Category: "NATS auth"},
		&cli.StringFlag{Name: "nats-token", Usage: "NATS auth token", EnvVars: []string{"ZKV_NATS_TOKEN"}, Category: "NATS auth"},
		&cli.StringFlag{Name: "nats-nkey", Usage: "`FILE` with an NKey user seed", EnvVars: []string{"ZKV_NATS_NKEY"}, Category: "NATS auth"},
		&cli.StringFlag{Name: "nats-creds", Usage: "NATS credentials `FILE` (JWT and seed)", EnvVars: []string{"ZKV_NATS_CREDS"}, Category: "NATS auth"},
		&cli.StringFlag{Name: "nats-tls-ca", Usage: "PEM `FILE` of CAs that verify the NATS server (requires TLS)", EnvVars: []string{"ZKV_NATS_TLS_CA"}, Category: "NATS auth"},
		&cli.StringFlag{Name: "nats-tls-cert", Usage: "client certificate `FILE` for mutual TLS", EnvVars: []string{"ZKV_NATS_TLS_CERT"}, Category: "NATS auth"},
		&cli.StringFlag{Name: "nats-tls-key", Usage: "client key `FILE` for mutual TLS", EnvVars: []string{"ZKV_NATS_TLS_KEY"}, Category: "NATS auth"},
	}
}

// NATSAuthFrom reads the flags of NATSAuth.
func NATSAuthFrom(c *cli.Context) bus.Auth {
	return bus.Auth{
		User:         c.String("nats-user"),
		Password:     c.String("nats-password"),
		Token:        c.String("nats-token"),
		NKeySeedFile: c.String("nats-nkey"),
		CredsFile:    c.String("nats-creds"),
		TLSCA:        c.String("nats-tls-ca"),
		TLSCert:      c.String("nats-tls-cert"),
		TLSKey:       c.String("nats-tls-key"),
	}
}
