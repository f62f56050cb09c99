package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// versionLine says what this binary was built from, as the Go toolchain stamped it: the
// module version ("devel" when built from a checkout), the commit (vcs.revision, marked
// "modified" when the work tree had changes) and the Go version.
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return formatVersion(bi)
}

func formatVersion(bi *debug.BuildInfo) string {
	version, commit, goVersion := "devel", "unknown", runtime.Version()
	modified := false
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("pimbot %s, commit %s, %s %s/%s", version, commit, goVersion, runtime.GOOS, runtime.GOARCH)
}
