package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/fleet"
)

// UpdateUpgradeAgents (AgentUpgrade) replaces the loaded instances whose
// agent is behind their node's version (msm upgrade agents): a roll of each
// service on agents of their node's version, extend then destroy
// (fleet/agents.go). The waiting containers behind are replaced through
// the warm pool without being asked.
const UpdateUpgradeAgents = "upgrade-agents"

// agentUpgradesChange gates agents following their node for the runs begun
// before: they load waiting containers whatever their agent, and have no
// agent upgrade.
const agentUpgradesChange = "agent-upgrades"

// AgentUpgrade names the services whose instances are brought to agents
// of their node's version; none: every service.
type AgentUpgrade struct {
	Services []string `json:"services,omitempty"`
}

// behind counts, by service, the instances that stay (loaded or starting,
// not draining) whose agent is behind their node, and the waiting
// containers so ("").
func (m *manager) behind() map[string]int {
	nodes := m.st.Inventory.NodeVersions()
	draining := map[string]bool{}
	for _, s := range m.st.Inventory.Servers {
		draining[s.ID] = s.State == fleet.ServerDraining
	}
	out := map[string]int{}
	for _, c := range m.st.Inventory.Containers {
		if draining[c.Server] || !fleet.AgentBehind(c, nodes) {
			continue
		}
		switch {
		case c.Service == "" && c.State == fleet.Waiting:
			out[""]++
		case c.Service != "" && (c.State == fleet.Loaded || c.State == fleet.Starting):
			out[c.Service]++
		}
	}
	return out
}

func (m *manager) validateAgentUpgrade(u AgentUpgrade) error {
	if m.st.Catalog == nil {
		return errors.New("the Manager has no catalog yet: start `msm worker --catalog FILE` first")
	}
	if !m.agents {
		return errors.New("this run of the Manager began on a build before agent upgrades: `msm upgrade manager` has it continue as a new run on its workers' build, then try again")
	}
	for _, name := range u.Services {
		if m.service(name) == nil {
			return fmt.Errorf("unknown service %q: the catalog has %v", name, m.serviceNames())
		}
		if r := m.rollout(name); r != nil && r.State == RollFailed {
			return fmt.Errorf("the roll of %s to revision %s failed (%s): fix the catalog, or `msm rollout resume %s`, before upgrading its agents", name, r.To, r.Error, name)
		}
	}
	return nil
}

// agentUpgrade begins, for each service asked with instances behind their
// node, a roll on agents of their node's version: a roll of its revision
// already under way takes them in too.
func (m *manager) agentUpgrade(ctx workflow.Context, u AgentUpgrade) (ProvisionAccepted, error) {
	if err := m.validateAgentUpgrade(u); err != nil {
		return ProvisionAccepted{}, err
	}
	now := workflow.Now(ctx)
	behind := m.behind()
	var rolling, current, skipped []string
	total := 0
	for _, svc := range m.st.Catalog.Services {
		if len(u.Services) > 0 && !slices.Contains(u.Services, svc.Name) {
			continue
		}
		n := behind[svc.Name]
		if n == 0 {
			current = append(current, svc.Name)
			continue
		}
		r := m.rollout(svc.Name)
		if r != nil && r.State == RollFailed {
			// Asked for every service: this one waits for its catalog.
			skipped = append(skipped, fmt.Sprintf("%s (its roll to revision %s failed)", svc.Name, r.To))
			continue
		}
		total += n
		rolling = append(rolling, fmt.Sprintf("%s (%d)", svc.Name, n))
		m.st.Pending = true
		if r != nil && r.active() {
			r.Agents = true
			m.record(ctx, Record{Kind: RecordRoll, Services: []string{svc.Name}, Trigger: "operator: upgrade agents",
				Message: fmt.Sprintf("roll of %s to revision %s replaces its %d instance(s) whose agent is behind their node too", svc.Name, r.target(), n)})
			continue
		}
		rev := m.revision(svc.Name)
		nr := Rollout{Service: svc.Name, From: rev, To: rev, Spec: *m.runSpec(svc.Name), State: RollRolling, Agents: true, Total: n, Started: now}
		if r != nil {
			*r = nr
		} else {
			m.st.Rollouts = append(m.st.Rollouts, nr)
		}
		p := svc.UpdatePolicy()
		m.record(ctx, Record{Kind: RecordRoll, Services: []string{svc.Name}, Trigger: "operator: upgrade agents",
			Message: fmt.Sprintf("upgrade of %s's agents: %d instance(s) whose agent is behind their node replaced by new ones on agents of their node's version, max_surge %d, max_unavailable %d, health_grace %s",
				svc.Name, n, p.MaxSurge, p.MaxUnavailable, p.HealthGrace)})
	}
	var msg []string
	if total > 0 {
		msg = append(msg, fmt.Sprintf("replacing %d instance(s) whose agent is behind their node, extend then destroy: %s (`msm rollout status` follows it)",
			total, strings.Join(rolling, ", ")))
	}
	if len(current) > 0 {
		msg = append(msg, "every instance of "+strings.Join(current, ", ")+" runs its node's agent")
	}
	if len(skipped) > 0 {
		msg = append(msg, "left as they are: "+strings.Join(skipped, ", "))
	}
	if n := behind[""]; n > 0 {
		msg = append(msg, fmt.Sprintf("%d waiting container(s) behind their node are being replaced through the warm pool", n))
	}
	return ProvisionAccepted{Message: strings.Join(msg, "; ")}, nil
}

// agentRoll reports whether r only brings its service to agents of their
// node's version (its revision unchanged).
func (r Rollout) agentRoll() bool { return r.Agents && r.From == r.To }

// UpdateRenew has the Manager continue as a new run once no operation runs
// (msm upgrade manager): the new run is its workers' code from its start.
// A run begun by an older build keeps what that build decided at its start
// (the GetVersion gates read there: agent upgrades, node versions…) until
// it continues as new, which otherwise waits for its history to fill.
const UpdateRenew = "renew"

// Renewed is the answer to UpdateRenew.
type Renewed struct {
	Message string `json:"message"`
	// RunID is the run that continues as new.
	RunID string `json:"run_id"`
}

func (m *manager) renewUpdate(ctx workflow.Context) (Renewed, error) {
	run := workflow.GetInfo(ctx).WorkflowExecution.RunID
	if m.renew {
		return Renewed{Message: "this run continues as new already, once its running operations end", RunID: run}, nil
	}
	m.renew = true
	m.record(ctx, Record{Kind: RecordEvent, Trigger: "operator: upgrade manager",
		Message: fmt.Sprintf("continuing as a new run on this worker's build once its %d running operation(s) end: no operation starts meanwhile", m.running)})
	return Renewed{Message: fmt.Sprintf("the Manager continues as a new run once its %d running operation(s) end", m.running), RunID: run}, nil
}
