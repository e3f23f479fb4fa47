package node

import (
	"strings"
	"testing"
)

func TestValidateHTTPSecurity(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"plain", Config{HTTPAddr: "127.0.0.1:8001"}, ""},
		{"tls", Config{HTTPAddr: "127.0.0.1:8001", HTTPTLSCert: "c", HTTPTLSKey: "k"}, ""},
		{"cert without key", Config{HTTPAddr: "127.0.0.1:8001", HTTPTLSCert: "c"}, "give both or neither"},
		{"key without cert", Config{HTTPAddr: "127.0.0.1:8001", HTTPTLSKey: "k"}, "give both or neither"},
		{"client CA without TLS", Config{HTTPAddr: "127.0.0.1:8001", HTTPTLSClientCA: "ca"}, "needs a server certificate"},
		{"pprof on loopback", Config{HTTPAddr: "127.0.0.1:8001", HTTPPprof: true}, ""},
		{"pprof on localhost", Config{HTTPAddr: "localhost:8001", HTTPPprof: true}, ""},
		{"pprof open", Config{HTTPAddr: "0.0.0.0:8001", HTTPPprof: true}, "open to anyone"},
		{"pprof on every interface", Config{HTTPAddr: ":8001", HTTPPprof: true}, "open to anyone"},
		{"pprof with users", Config{HTTPAddr: "0.0.0.0:8001", HTTPPprof: true, HTTPAuthFile: "f"}, ""},
		{"pprof with client certs", Config{HTTPAddr: "10.0.0.1:8001", HTTPPprof: true, HTTPTLSCert: "c", HTTPTLSKey: "k", HTTPTLSClientCA: "ca"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.validateHTTPSecurity()
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("errors %v, want none", errs)
			case tt.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want)):
				t.Errorf("errors %v, want one containing %q", errs, tt.want)
			}
		})
	}
}

func TestHTTPOpenWarning(t *testing.T) {
	tests := []struct {
		cfg  Config
		warn bool
	}{
		{Config{HTTPAddr: "127.0.0.1:8001"}, false},
		{Config{HTTPAddr: "[::1]:8001"}, false},
		{Config{HTTPAddr: "localhost:8001"}, false},
		{Config{HTTPAddr: ""}, false},
		{Config{HTTPAddr: "0.0.0.0:8001"}, true},
		{Config{HTTPAddr: ":8001"}, true},
		{Config{HTTPAddr: "192.168.1.5:8001"}, true},
		{Config{HTTPAddr: "192.168.1.5:8001", HTTPTLSCert: "c", HTTPTLSKey: "k"}, true},
		{Config{HTTPAddr: "0.0.0.0:8001", HTTPAuthFile: "f"}, false},
		{Config{HTTPAddr: "0.0.0.0:8001", HTTPTLSClientCA: "ca"}, false},
	}
	for _, tt := range tests {
		if got := tt.cfg.httpOpenWarning(); (got != "") != tt.warn {
			t.Errorf("%+v: warning %q, want warning=%v", tt.cfg, got, tt.warn)
		}
	}
}
