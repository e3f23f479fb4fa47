package testdriver

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/httpauth"
)

// UpHTTP describes the secured HTTP API of a cluster started by Up: TLS
// with a CA made at start, and two users. The secrets are in files, so
// that the printed commands read them and no log holds them.
type UpHTTP struct {
	// Dir holds every file below.
	Dir string
	// CA is the CA certificate that verifies the servers.
	CA string
	// AuthFile is the servers' --http-auth-file.
	AuthFile string
	// Writer is a readwrite user; its password is in WriterPasswordFile.
	Writer, WriterPasswordFile string
	// Reader is a read-only user; its bearer token is in ReaderTokenFile.
	Reader, ReaderTokenFile string
}

// Names of Up's HTTP users.
const (
	upWriter = "admin"
	upReader = "reader"
)

// setupHTTP makes a CA, a server certificate, an auth file, a password and
// a token in dir; it returns them, the kvserver flags that use them and
// the client TLS config of the health probes.
func setupHTTP(dir string) (*UpHTTP, []string, *tls.Config, error) {
	pki, err := harness.NewPKI(dir, "zkv up")
	if err != nil {
		return nil, nil, nil, err
	}
	h := &UpHTTP{
		Dir: dir, CA: pki.CA, AuthFile: filepath.Join(dir, "users"),
		Writer: upWriter, WriterPasswordFile: filepath.Join(dir, upWriter+".password"),
		Reader: upReader, ReaderTokenFile: filepath.Join(dir, upReader+".token"),
	}
	password, token := randomHex(16), randomHex(24)
	pwHash, err := httpauth.HashPassword(password, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	tokenHash, err := httpauth.HashToken(token)
	if err != nil {
		return nil, nil, nil, err
	}
	users := "# made by testdriver up: a readwrite user with a password, a read-only one with a token\n" +
		httpauth.Line(upWriter, httpauth.RoleReadWrite, pwHash) + "\n" +
		httpauth.Line(upReader, httpauth.RoleRead, tokenHash) + "\n"
	for path, text := range map[string]string{h.AuthFile: users, h.WriterPasswordFile: password, h.ReaderTokenFile: token} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return nil, nil, nil, fmt.Errorf("http setup: %w", err)
		}
	}
	clientTLS, err := pki.ClientTLS(false)
	if err != nil {
		return nil, nil, nil, err
	}
	args := []string{"--http-tls-cert", pki.ServerCert, "--http-tls-key", pki.ServerKey, "--http-auth-file", h.AuthFile}
	return h, args, clientTLS, nil
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
