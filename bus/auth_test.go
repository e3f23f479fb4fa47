package bus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// startAuthServer starts an embedded NATS server with opts on a free
// loopback port.
func startAuthServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func TestAuthOptionsAgainstServersThatRequireThem(t *testing.T) {
	dir := t.TempDir()
	seed, pub := nkeyUser(t, dir)
	ca, cert, key := tlsFiles(t, dir)

	tests := []struct {
		name   string
		server server.Options
		good   Auth
		bad    Auth
	}{
		{"user/password", server.Options{Username: "zkv", Password: "pw"}, Auth{User: "zkv", Password: "pw"}, Auth{User: "zkv", Password: "wrong"}},
		{"token", server.Options{Authorization: "t0k3n"}, Auth{Token: "t0k3n"}, Auth{Token: "nope"}},
		{"nkey", server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}}, Auth{NKeySeedFile: seed}, Auth{}},
		{"tls with client cert", tlsServerOptions(t, ca, cert, key), Auth{TLSCA: ca, TLSCert: cert, TLSKey: key}, Auth{TLSCA: ca}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startAuthServer(t, &tt.server)
			url := srv.ClientURL()
			for _, c := range []struct {
				auth Auth
				ok   bool
			}{{tt.good, true}, {tt.bad, false}} {
				opts, err := c.auth.Options()
				if err != nil {
					t.Fatal(err)
				}
				nc, err := nats.Connect(url, append(opts, nats.Timeout(2*time.Second))...)
				if c.ok && err != nil {
					t.Fatalf("connect with %+v: %v", c.auth, err)
				}
				if !c.ok && err == nil {
					nc.Close()
					t.Fatalf("connect with %+v succeeded against a server requiring %s", c.auth, tt.name)
				}
				if nc != nil {
					nc.Close()
				}
			}
		})
	}
}

func TestAuthOptionsRejectsContradictions(t *testing.T) {
	for _, a := range []Auth{
		{User: "u", Password: "p", Token: "t"},
		{User: "u"},
		{Token: "t", CredsFile: "x"},
		{TLSCert: "c"},
		{NKeySeedFile: "/nonexistent/seed"},
	} {
		if _, err := a.Options(); !errors.Is(err, ErrAuthConfig) {
			t.Errorf("Options(%+v) = %v, want ErrAuthConfig", a, err)
		}
	}
}

func nkeyUser(t *testing.T, dir string) (seedFile, public string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	public, _ = kp.PublicKey()
	seedFile = filepath.Join(dir, "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return seedFile, public
}

// tlsFiles writes a CA and a certificate for 127.0.0.1 signed by it, used
// by both the server and the client.
func tlsFiles(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "zkv test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
	caCert, _ := x509.ParseCertificate(caDER)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
}

func tlsServerOptions(t *testing.T, ca, cert, key string) server.Options {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cert, KeyFile: key, CaFile: ca, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	return server.Options{TLSConfig: tc, TLSVerify: true, TLS: true}
}
