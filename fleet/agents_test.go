package fleet

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

// upgraded is inv with each server's node at version v2, and every
// container's agent at v1 but for those named in fresh (v2).
func upgraded(inv *Inventory, fresh ...string) *Inventory {
	for i := range inv.Servers {
		inv.Servers[i].Node = "v2"
	}
	for i := range inv.Containers {
		inv.Containers[i].Agent = "v1"
		if slices.Contains(fresh, inv.Containers[i].ID) {
			inv.Containers[i].Agent = "v2"
		}
	}
	return inv
}

// agentsB rolls web's agents (its revision b unchanged).
func agentsB(mod ...func(*Roll)) []Roll {
	return rollB(append([]func(*Roll){func(r *Roll) { r.Agents = true }}, mod...)...)
}

func TestAgentsFollowTheirNode(t *testing.T) {
	long := now.Add(-time.Minute)
	just := now.Add(-2 * time.Second)
	web := func(id, server string, port int) Container { return at(loaded(id, server, port, "web"), "b", long) }
	api := at(loaded("m-c3", "s1", 20002, "api"), "b", long)
	runDecide(t, []decideCase{{
		name: "a waiting container behind its node is destroyed; the refill waits for the pool",
		state: State{Manager: mgr, Catalog: webAPI(1), Revision: revB, Agents: true, Inventory: upgraded(twoServers(
			web("m-c1", "s1", 20000), web("m-c2", "s1", 20001), api, waiting("m-c4", "s2", 21000)))},
		ops:     []string{"shrink pool: destroy m-c4"},
		reasons: []string{"waiting with an agent of another version than its node's: 1"},
	}, {
		name: "of a pool of four behind, two go: half the pool keeps waiting",
		state: State{Manager: mgr, Catalog: webAPI(4), Revision: revB, Agents: true, Inventory: upgraded(twoServers(
			web("m-c1", "s1", 20000), web("m-c2", "s1", 20001), api,
			waiting("m-c4", "s2", 21000), waiting("m-c5", "s2", 21001), waiting("m-c6", "s2", 21002), waiting("m-c7", "s2", 21003)))},
		ops: []string{"shrink pool: destroy m-c7 destroy m-c6"},
	}, {
		name: "one of the node's version waits already: one behind goes, then the refill",
		state: State{Manager: mgr, Catalog: webAPI(2), Revision: revB, Agents: true, Inventory: upgraded(twoServers(
			web("m-c1", "s1", 20000), web("m-c2", "s1", 20001), api, waiting("m-c4", "s2", 21000), waiting("m-c5", "s2", 21001)), "m-c5")},
		ops: []string{"shrink pool: destroy m-c4"},
	}, {
		name: "an extension does not load a waiting container behind its node: it starts one",
		state: State{Manager: mgr, Catalog: webAPI(1), Revision: revB, Agents: true, Extending: []string{"web"}, Running: []Keys{{Pool: true}},
			Desired: desired3, Inventory: upgraded(twoServers(web("m-c1", "s1", 20000), web("m-c2", "s1", 20001), api, waiting("m-c4", "s2", 21000)))},
		ops: []string{"extend web: start m-c10@s2:21001=web"},
	}, {
		name: "a run before agents followed their node loads it",
		state: State{Manager: mgr, Catalog: webAPI(1), Revision: revB, Extending: []string{"web"}, Running: []Keys{{Pool: true}},
			Desired: desired3, Inventory: upgraded(twoServers(web("m-c1", "s1", 20000), web("m-c2", "s1", 20001), api, waiting("m-c4", "s2", 21000)))},
		ops: []string{"extend web: load m-c4=web"},
	}, {
		name: "a node whose version is not known: its agents are not behind",
		state: State{Manager: mgr, Catalog: webAPI(1), Revision: revB, Agents: true, Inventory: func() *Inventory {
			inv := upgraded(twoServers(web("m-c1", "s1", 20000), web("m-c2", "s1", 20001), api, waiting("m-c4", "s2", 21000)))
			inv.Servers[1].Node = ""
			return inv
		}()},
	}, {
		name: "loaded instances behind are left serving until the operator asks",
		state: State{Manager: mgr, Catalog: webAPI(1), Revision: revB, Agents: true, Inventory: upgraded(twoServers(
			web("m-c1", "s1", 20000), web("m-c2", "s1", 20001), api, waiting("m-c4", "s2", 21000)), "m-c4")},
	}, {
		name: "asked: the first new instance takes the waiting container of the node's version",
		state: State{Manager: mgr, Catalog: webAPI(1), Revision: revB, Agents: true, Rolls: agentsB(), Inventory: upgraded(twoServers(
			web("m-c1", "s1", 20000), web("m-c2", "s1", 20001), api, waiting("m-c4", "s2", 21000)), "m-c4")},
		ops:     []string{"roll web: load m-c4=web"},
		reasons: []string{"roll web to revision b on agents of their node's version: 0 of 2 instance(s) run it, 2 behind to replace; 1 new (max_surge 1, max_unavailable 0)"},
	}, {
		name: "the new instance healthy within the grace: nothing goes",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Agents: true, Rolls: agentsB(), Inventory: upgraded(twoServers(
			web("m-c1", "s1", 20000), web("m-c2", "s1", 20001), api, at(loaded("m-c5", "s2", 21000, "web"), "b", just)), "m-c5")},
	}, {
		name: "past the grace: one behind is destroyed, not unloaded into the short pool",
		state: State{Manager: mgr, Catalog: webAPI(1), Revision: revB, Agents: true, Rolls: agentsB(), Running: []Keys{{Pool: true}}, Inventory: upgraded(twoServers(
			web("m-c1", "s1", 20000), web("m-c2", "s1", 20001), api, web("m-c5", "s2", 21000)), "m-c5")},
		ops:     []string{"shrink web: destroy m-c2"},
		reasons: []string{"web replaced on an agent of its node's version: 1"},
	}, {
		name: "every instance on its node's agent: nothing",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Agents: true, Rolls: agentsB(), Inventory: upgraded(twoServers(
			web("m-c1", "s1", 20000), web("m-c2", "s1", 20001), api), "m-c1", "m-c2")},
	}})
}

// desired3 is web at 3, api at 1.
func desired3(s catalog.Service) int { return map[string]int{"web": 3, "api": 1}[s.Name] }

// TestAgentUpgradeReplacesEveryAgent walks `msm upgrade agents` of web ×3
// through the Manager's decisions, each operation done before the next
// and the clock past the grace (a new container is placed with its node's
// agent): never fewer than 3 healthy, and in the end every container, web's
// and the pool's, runs its node's agent.
func TestAgentUpgradeReplacesEveryAgent(t *testing.T) {
	c := webAPI(1)
	c.Services[0].Replicas.Initial = 3
	inv := upgraded(twoServers(
		at(loaded("m-c1", "s1", 20000, "web"), "b", now), at(loaded("m-c2", "s1", 20001, "web"), "b", now),
		at(loaded("m-c5", "s2", 21001, "web"), "b", now), at(loaded("m-c3", "s1", 20002, "api"), "b", now), waiting("m-c4", "s2", 21000)),
		"m-c3")
	clock := now
	var kinds []string
	for step := 0; step < 20; step++ {
		clock = clock.Add(15 * time.Second)
		d := Decide(State{Manager: mgr, Catalog: c, Revision: revB, Rolls: agentsB(), Agents: true, Inventory: inv}, clock)
		if len(d.Ops) == 0 {
			break
		}
		inv.Apply(d)
		for _, op := range d.Ops {
			kinds = append(kinds, string(op.Kind))
			for _, p := range slices.Concat(op.Place.Starts, op.Place.Loads) {
				x := inv.Container(p.ID)
				require.Equal(t, "v2", x.Agent, "step %d: %s placed on an agent behind", step, x.ID)
				if x.Service == "" {
					x.State = Waiting
					continue
				}
				x.State, x.Healthy, x.ReadyAt = Loaded, true, clock
			}
			for _, r := range op.Remove.Destroys {
				inv.RemoveContainer(r.ID)
			}
			require.Empty(t, op.Remove.Unloads, "step %d: an agent behind is never unloaded into the pool", step)
		}
		healthy := 0
		for _, x := range inv.Containers {
			if x.Service == "web" && x.State == Loaded && x.Healthy {
				healthy++
			}
		}
		require.GreaterOrEqual(t, healthy, 3, "step %d: web below desired", step)
		require.LessOrEqual(t, healthy, 4, "step %d: more than max_surge above desired", step)
	}
	agents := map[string]int{}
	for _, x := range inv.Containers {
		agents[x.Agent]++
		if x.Service == "" {
			agents["waiting"]++
		}
	}
	assert.Equal(t, map[string]int{"v2": 5, "waiting": 1}, agents, "web ×3, api and the pool's one, every agent its node's")
	assert.Equal(t, 3, count(kinds, "roll"), "one roll operation per instance: %v", kinds)
}
