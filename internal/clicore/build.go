package clicore

import "runtime/debug"

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
