package workflows

import (
	"slices"
	"time"

	"github.com/msm-project/msm/fleet"
)

// Operations side by side. A Manager run that recorded parallelOpsChange
// decides whenever something is pending, not only when no operation runs:
// each new decision leaves alone what the running operations hold (their
// fleet.Keys: services, the warm pool when they take from or give to it,
// the servers they launch or release), so a recovery of one service never
// waits behind a drain, a server launch or a shrink of others. Runs begun
// before keep one operation at a time.

// parallelOpsChange gates deciding while other operations run.
const parallelOpsChange = "parallel-ops"

// runningOp is an operation in flight and what it holds. kind, start
// and containers are what its end is recorded with, and what a run that
// continues as new while it runs hands over (HandedOp).
type runningOp struct {
	id   string
	keys fleet.Keys
	// kind is its record's kind ("extend", "shrink" …), start when it
	// began, containers the containers of its plan: those its failure
	// leaves half done.
	kind       string
	start      time.Time
	containers []string
}

// held are the services ("" for the warm pool) and the servers the running
// operations hold, which a decision made now leaves alone.
func (m *manager) held() (services, servers []string) {
	for _, op := range m.ops {
		for _, s := range op.keys.Services {
			services = appendNew(services, s)
		}
		if op.keys.Pool {
			services = appendNew(services, "")
		}
		for _, s := range op.keys.Servers {
			servers = appendNew(servers, s)
		}
	}
	return services, servers
}

// running are the keys the running operations hold.
func (m *manager) runningKeys() []fleet.Keys {
	out := make([]fleet.Keys, 0, len(m.ops))
	for _, op := range m.ops {
		out = append(out, op.keys)
	}
	return out
}

// taking reports whether a running operation loads waiting containers.
func (m *manager) taking() bool {
	return slices.ContainsFunc(m.ops, func(op runningOp) bool { return op.keys.Took })
}

// opsOn are the IDs of the running operations that need to hear that
// server is lost: those with steps there (every one, in runs begun before
// operations ran side by side).
func (m *manager) opsOn(server string) []string {
	var ids []string
	for _, op := range m.ops {
		if !m.parallel || slices.Contains(op.keys.On, server) {
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
