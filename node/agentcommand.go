package node

import (
	"fmt"
	"os"
	"path/filepath"
)

// LeanAgent is the file name of the lean container agent (cmd/msm-agent):
// `msm agent` without the cloud SDKs, the Docker client and PostgreSQL,
// which `make build` and the msm image install beside msm.
const LeanAgent = "msm-agent"

// AgentCommand is the command that starts a container agent, for the msm
// binary at msm: the lean agent when it is installed beside msm (at 200
// containers an agent then holds ~6.5 MiB of its own instead of ~9.7, and
// ~24 MiB RSS instead of ~39: make bench's B11), else `msm agent`, and then
// why the lean one is not taken.
func AgentCommand(msm string) (command []string, fallback string) {
	lean := filepath.Join(filepath.Dir(msm), LeanAgent)
	st, err := os.Stat(lean)
	switch {
	case err != nil:
		return []string{msm, "agent"}, fmt.Sprintf("no %s beside msm (%v)", LeanAgent, err)
	case !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0:
		return []string{msm, "agent"}, fmt.Sprintf("%s is not an executable file (%s)", lean, st.Mode())
	}
	return []string{lean}, ""
}
