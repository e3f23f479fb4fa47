package cliflags

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	vcs := func(settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "zkv", Version: "(devel)"}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	const rev = "3f9c2a1b7e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b"
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "(devel)"},
		{"no vcs", vcs(), true, "(devel)"},
		{"clean", vcs("vcs.revision", rev, "vcs.modified", "false"), true, "3f9c2a1b7e4d"},
		{"dirty", vcs("vcs.revision", rev, "vcs.modified", "true"), true, "3f9c2a1b7e4d-dirty"},
		{"module version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, true, "v1.2.3"},
		{"empty module version", &debug.BuildInfo{}, true, "(devel)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := buildVersion(tt.bi, tt.ok); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if v := Version(); !strings.HasSuffix(v, " "+runtime.Version()) {
		t.Errorf("Version() = %q, want it to end with the Go version", v)
	}
}
