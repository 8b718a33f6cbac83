package workflows

import (
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/fleet"
)

// UpdateDrain names the update that rearranges a server's instances onto
// other servers and releases it.
const UpdateDrain = "drain"

// WorkflowRearrange is the workflow type of the operation that places a
// draining server's replacements (the Provision code under its own name).
const WorkflowRearrange = "Rearrange"

// DrainUpdate asks the Manager to empty Server: extend each of its
// instances elsewhere, wait until they are healthy, then destroy the old
// ones and release the server. DryRun only answers with the plan.
type DrainUpdate struct {
	Server string `json:"server"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// knownServer is the server in use named id, or why there is none.
func (m *manager) knownServer(id string) (*fleet.Server, error) {
	if m.st.Catalog == nil {
		return nil, fmt.Errorf("the Manager has no catalog yet: start `msm worker --catalog FILE` first")
	}
	s := m.st.Inventory.Server(id)
	if s == nil {
		var ids []string
		for _, s := range m.st.Inventory.Servers {
			ids = append(ids, s.ID)
		}
		return nil, fmt.Errorf("unknown server %q: the servers in use are %v", id, ids)
	}
	return s, nil
}

func (m *manager) validateDrain(u DrainUpdate) error {
	s, err := m.knownServer(u.Server)
	if err != nil {
		return err
	}
	if s.State == fleet.ServerDraining && !u.DryRun {
		return fmt.Errorf("server %s is already being drained; `msm status` shows its progress", u.Server)
	}
	return nil
}

// drainUpdate marks the server draining (nothing new goes there) and lets
// the decisions do the rest: replacements first, then removals.
func (m *manager) drainUpdate(ctx workflow.Context, u DrainUpdate) (ProvisionAccepted, error) {
	// Validated, but a release taken in the same task may have changed it.
	if err := m.validateDrain(u); err != nil {
		return ProvisionAccepted{}, err
	}
	plan := m.previewDrain(u.Server)
	if u.DryRun {
		return ProvisionAccepted{Message: "dry run: " + plan}, nil
	}
	m.st.Inventory.Server(u.Server).State = fleet.ServerDraining
	m.st.Pending = true
	m.record(ctx, Record{Kind: RecordDrain, Servers: []string{u.Server}, Message: fmt.Sprintf("drain %s: %s", u.Server, plan)})
	return ProvisionAccepted{Message: "draining " + u.Server + ": " + plan}, nil
}

// previewDrain says what draining a server would do, deciding on a copy of
// the inventory.
func (m *manager) previewDrain(server string) string {
	inv := m.st.Inventory.Clone()
	inv.Server(server).State = fleet.ServerDraining
	var moves []string
	for _, c := range inv.OnServer(server) {
		if c.Service != "" {
			moves = append(moves, fmt.Sprintf("%s (%s)", c.Service, c.ID))
		}
	}
	add := fleet.PlanScale(&inv, m.st.Catalog, m.st.Manager, fleet.Options{Desired: m.desired})
	var where []string
	for _, c := range slices.Concat(add.Loads, add.Starts) {
		if c.Service != "" {
			where = append(where, c.Service+" on "+c.Server)
		}
	}
	msg := "no instance to move"
	if len(moves) > 0 {
		msg = "move " + strings.Join(moves, ", ")
		if len(where) > 0 {
			msg += " to " + strings.Join(where, ", ")
		}
	}
	for _, u := range add.Unplaced {
		if u.Service != "" {
			msg += fmt.Sprintf("; %d instance(s) of %s cannot be placed elsewhere (%s), so they stay until there is room", u.Count, u.Service, u.Reason)
		}
	}
	return msg + fmt.Sprintf("; then destroy the old instances and release %s", server)
}

// drainingServer is a server being drained, or "".
func (m *manager) drainingServer() string {
	for _, s := range m.st.Inventory.Servers {
		if s.State == fleet.ServerDraining {
			return s.ID
		}
	}
	return ""
}

// consolidate drains the least-used server when the consolidation policy
// is on and the other servers have room for all it runs; the drain then
// rearranges its instances and releases it.
func (m *manager) consolidate(ctx workflow.Context) {
	if !m.st.Catalog.Manager.Consolidate {
		return
	}
	id := fleet.PlanConsolidation(&m.st.Inventory, m.st.Catalog)
	if id == "" {
		return
	}
	plan := m.previewDrain(id)
	m.st.Inventory.Server(id).State = fleet.ServerDraining
	m.st.Pending = true
	m.record(ctx, Record{Kind: RecordConsolidate, Servers: []string{id}, Message: fmt.Sprintf("consolidation: drain %s, the other servers have room: %s", id, plan)})
}

// UpdateForget (ForgetUpdate → ProvisionAccepted) forgets a lost server
// now, as manager.forget_after would later (`msm forget SERVER`).
const UpdateForget = "forget"

// ForgetUpdate names the lost server to forget.
type ForgetUpdate struct {
	Server string `json:"server"`
}

func (m *manager) validateForget(u ForgetUpdate) error {
	s, err := m.knownServer(u.Server)
	if err != nil {
		return err
	}
	if s.State != fleet.ServerLost {
		return fmt.Errorf("server %s is %s, not lost: only a lost server is forgotten; `msm drain %s` empties and releases one in use", s.ID, s.State, s.ID)
	}
	if !m.forgets {
		return fmt.Errorf("this run of the Manager began before servers could be forgotten; it continues as a new run soon, then try again")
	}
	return nil
}

// forgetUpdate forgets a lost server: its containers and their ports
// are released, and it leaves the inventory.
func (m *manager) forgetUpdate(ctx workflow.Context, u ForgetUpdate) (ProvisionAccepted, error) {
	if err := m.validateForget(u); err != nil {
		return ProvisionAccepted{}, err
	}
	s := *m.st.Inventory.Server(u.Server)
	m.forget(ctx, s, "forgotten by an operator (msm forget)")
	m.st.Pending = true
	return ProvisionAccepted{Message: fmt.Sprintf("forgetting %s: its containers and their ports are released; a node that comes back there is fenced", u.Server)}, nil
}
