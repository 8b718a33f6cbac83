package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/fleet"
)

// WorkflowRecover is the workflow type of the operation that places the
// replacements of failed instances (the Provision code under its own name).
const WorkflowRecover = "Recover"

// onErrorReport takes a container out of service when its agent reports
// its MicroService failed: the instance is failed (no longer counted), a
// replacement is placed at once (after the service's crash-loop back-off),
// and the failed container is destroyed. Reports for a container already
// failed change nothing, so a storm of them makes one recovery.
func (m *manager) onErrorReport(ctx workflow.Context, r ErrorReport) {
	c := m.st.Inventory.Container(r.Container)
	if c == nil || (c.State != fleet.Loaded && c.State != fleet.Waiting) {
		return
	}
	r.Reason = fleet.Clip(r.Reason)
	c.State, c.Healthy, c.Crashed, c.Error = fleet.Failed, false, true, r.Reason
	m.failed(ctx, c.Service, "report:"+c.ID, r.Reason)
	m.rollFailed(ctx, c, "reported "+r.Reason)
	if c.Service != "" && !slices.Contains(m.st.Recovering, c.Service) {
		m.st.Recovering = append(m.st.Recovering, c.Service)
	}
	m.st.Pending = true
	what := c.Service
	var services []string
	if what == "" {
		what = "the warm pool"
	} else {
		services = []string{c.Service}
		m.count(CountRecoveries, 1, c.Service, reasonOr(r.Cause, CauseReport))
	}
	m.record(ctx, Record{Kind: RecordRecover, Services: services, Servers: []string{c.Server},
		Message: fmt.Sprintf("recover %s: container %s on %s reported %s", what, c.ID, c.Server, r.Reason)})
}

// allIn reports whether every element of a is in b.
func allIn(a, b []string) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}
