package cliflags

import (
	"runtime"
	"runtime/debug"
)

// Version describes the running build for --version: the commit it was
// built from (12 hex digits, with "-dirty" when the work tree had
// uncommitted changes) or the module version ("(devel)" when there is
// neither), then the Go version: "3f9c2a1b7e4d-dirty go1.24.2".
func Version() string {
	return buildVersion(debug.ReadBuildInfo()) + " " + runtime.Version()
}

// buildVersion is the first part of Version, read from bi.
func buildVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "(devel)"
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		if bi.Main.Version != "" {
			return bi.Main.Version
		}
		return "(devel)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
