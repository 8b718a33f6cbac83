// Package version names the build of msm a process runs: what its nodes
// and agents report to the Manager and `msm status` shows, so that a fleet
// half-way through an upgrade says which part runs which build.
package version

import (
	"runtime/debug"
	"sync"
)

// Version is set at link time to name a build (`go build -ldflags "-X
// github.com/msm-project/msm/internal/version.Version=v1.2.0"`); when it is
// not, Get names the build by its commit.
var Version string

var (
	once  sync.Once
	found string
)

// Get is this build's version: Version when set, else the first 12 hex
// digits of the commit it was built from (with "+dirty" when the work tree
// had changes), else "dev".
func Get() string {
	if Version != "" {
		return Version
	}
	once.Do(func() { found = fromBuildInfo(debug.ReadBuildInfo()) })
	return found
}

// fromBuildInfo names a build by its VCS stamp.
func fromBuildInfo(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "dev"
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}
