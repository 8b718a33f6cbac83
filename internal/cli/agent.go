package cli

import "github.com/msm-project/msm/internal/agentcmd"

// agent is the container agent; the lean msm-agent binary runs the same code.
func (e *env) agent(args []string) error {
	return agentcmd.Run("msm agent", args, e.stderr, e.getenv)
}
