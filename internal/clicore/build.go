package clicore

import "github.com/msm-project/msm/internal/version"

// BuildID names this build for the Temporal SDK (its binary checksum, the
// mark of workflow reset points): "msm " and its version (internal/version).
func BuildID() string {
	return "msm " + version.Get()
}
