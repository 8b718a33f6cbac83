package workflows

import (
	"slices"

	"github.com/msm-project/msm/fleet"
)

// Operations side by side. A Manager run that recorded parallelOpsChange
// decides whenever something is pending, not only when no operation runs:
// each new decision leaves alone what the running operations work on (their
// services, the warm pool when they take from or give to it, the servers
// they launch or release), so a recovery of one service never waits behind
// a drain, a server launch or a shrink of others. Runs begun before keep
// one operation at a time.

// parallelOpsChange gates deciding while other operations run.
const parallelOpsChange = "parallel-ops"

// runningOp is an operation in flight and what it holds.
type runningOp struct {
	id string
	// services are the services it adds or removes instances of; pool says
	// it starts warm-pool containers, or unloads into the pool or destroys
	// pool containers. Taking a waiting container holds nothing: the
	// decision took it out of the pool, so no other decision can.
	services []string
	pool     bool
	// took says it loads waiting containers: the pool's refill waits
	// until it ends (refill-pool-after).
	took bool
	// avoid are the servers it launches or releases: nothing else is
	// placed there meanwhile.
	avoid []string
	// on are every server it has steps on (launches, starts, loads,
	// unloads, destroys, releases): a server lost there ends those steps.
	on []string
}

// placementOp is what a Provision (or Extend, Recover, Rearrange) of plan holds.
func placementOp(id string, plan fleet.Plan) runningOp {
	op := runningOp{id: id, services: plan.Services(), took: len(plan.Loads) > 0}
	for _, s := range plan.Servers {
		op.avoid = append(op.avoid, s.ID)
		op.on = appendNew(op.on, s.ID)
	}
	for _, c := range plan.Starts {
		op.pool = op.pool || c.Service == ""
	}
	for _, c := range slices.Concat(plan.Starts, plan.Loads) {
		op.on = appendNew(op.on, c.Server)
	}
	return op
}

// shrinkOp is what a Shrink of plan holds.
func shrinkOp(id string, plan fleet.ShrinkPlan) runningOp {
	op := runningOp{id: id, services: plan.Services(), pool: len(plan.Unloads) > 0, avoid: plan.Release}
	for _, c := range slices.Concat(plan.Unloads, plan.Destroys) {
		op.pool = op.pool || c.Service == ""
		op.on = appendNew(op.on, c.Server)
	}
	for _, s := range plan.Release {
		op.on = appendNew(op.on, s)
	}
	return op
}

// held are the services ("" for the warm pool) and the servers the running
// operations hold, which a decision made now leaves alone.
func (m *manager) held() (services, servers []string) {
	for _, op := range m.ops {
		for _, s := range op.services {
			services = appendNew(services, s)
		}
		if op.pool {
			services = appendNew(services, "")
		}
		for _, s := range op.avoid {
			servers = appendNew(servers, s)
		}
	}
	return services, servers
}

// taking reports whether a running operation loads waiting containers.
func (m *manager) taking() bool {
	return slices.ContainsFunc(m.ops, func(op runningOp) bool { return op.took })
}

// opsOn are the IDs of the running operations that need to hear that
// server is lost: those with steps there (every one, in runs begun before
// operations ran side by side).
func (m *manager) opsOn(server string) []string {
	var ids []string
	for _, op := range m.ops {
		if !m.parallel || slices.Contains(op.on, server) {
			ids = append(ids, op.id)
		}
	}
	return ids
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
