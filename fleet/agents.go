package fleet

import "github.com/msm-project/msm/catalog"

// An agent follows its node. A container's agent is the msm of the node
// that started it (Container.Agent); a node restarted as another version
// adopts its containers with their agents as they were. A decision with
// State.Agents replaces the agents left behind, never by stopping one that
// serves first:
//   - a waiting container whose agent is not its node's version is never
//     loaded, and is destroyed a few at a time (half its pool at most while
//     the pool is whole) so that the refill starts one of the node's version
//     in its place (shrinkAgents, from the shrink);
//   - a loaded one is replaced only when the operator asks (`msm upgrade
//     agents`): a Roll with Agents, extend then destroy, as a revision roll
//     does.

// NodeVersions is the version each server's node last said, by server
// ("" when not said).
func (inv *Inventory) NodeVersions() map[string]string {
	out := make(map[string]string, len(inv.Servers))
	for _, s := range inv.Servers {
		out[s.ID] = s.Node
	}
	return out
}

// AgentBehind reports whether c's agent is not its node's version (nodes
// from NodeVersions): never while its node's version is not known.
func AgentBehind(c Container, nodes map[string]string) bool {
	n := nodes[c.Server]
	return n != "" && c.Agent != n
}

// anyAgents reports whether a roll replaces agents.
func anyAgents(rolls []Roll) bool {
	for _, r := range rolls {
		if r.Agents {
			return true
		}
	}
	return false
}

// shrinkAgents destroys waiting containers whose agent is behind their
// node, of each image's pool: as many as leave half the pool waiting, at
// least one, so that extensions still find waiting containers while the
// refill replaces them. Those of a draining server are the drain's.
func shrinkAgents(inv *Inventory, cat *catalog.Catalog, nodes map[string]string, draining map[string]bool,
	victims func([]int, func(Container) bool) []*Container, destroy func(*Container)) {
	waiting := map[string]int{}
	var behind []int
	for i, c := range inv.Containers {
		if c.Service != "" || c.State != Waiting || draining[c.Server] {
			continue
		}
		waiting[c.Image]++
		if AgentBehind(c, nodes) {
			behind = append(behind, i)
		}
	}
	gone := map[string]int{}
	for _, c := range victims(behind, func(Container) bool { return true }) {
		if gone[c.Image] >= max(1, waiting[c.Image]-cat.Manager.PoolSize(c.Image)/2) {
			continue
		}
		gone[c.Image]++
		destroy(c)
	}
}
