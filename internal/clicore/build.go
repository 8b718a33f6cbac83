package clicore

import (
	"runtime/debug"

	"go.temporal.io/sdk/worker"
)

// SkipBinaryChecksum names this binary for the Temporal SDK by its build
// instead of by its bytes. Unless told, the SDK reads and hashes the whole
// executable (about 90 MB for msm, 30 for msm-agent) when the process's
// first worker starts; the checksum marks workflow reset points, which only
// workflow workers record.
// Agents and nodes run activities only, and an agent's start is on the path
// of every new container: the hash was ~150 ms of its ~250 ms start, and
// tens of seconds of CPU when hundreds of containers start at once.
func SkipBinaryChecksum() {
	worker.SetBinaryChecksum(BuildID())
}

// BuildID is how the Go toolchain stamped this build: the module version,
// or the VCS revision (with "+dirty" for uncommitted changes), else
// "msm (devel)".
func BuildID() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "msm (devel)"
	}
	id := "msm " + info.Main.Version
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			id += " " + s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			id += "+dirty"
		}
	}
	return id
}
