package agent

import "github.com/msm-project/msm/workflows/agentapi"

// SetSignaler makes s the agent's way to the Manager, as Run does with its
// client: its reports (watch) go to s.
func SetSignaler(a *Agent, s Signaler) { a.client = s }

// Leave leaves a load report for the agent's node, as its monitor does.
func Leave(a *Agent, r agentapi.Report) error { return a.leave(r) }
