package fleet

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/msm-project/msm/catalog"
)

func TestPlanShrink(t *testing.T) {
	r := catalog.PortRange{First: 100, Last: 199}
	servers := []Server{{ID: "s1", Slots: 8, Ports: r, State: ServerReady}, {ID: "s2", Slots: 8, Ports: r, State: ServerReady}}
	web := func(id, server string, port int) Container {
		return Container{ID: id, Server: server, Port: port, State: Loaded, Service: "web", Healthy: true}
	}
	warm := func(id, server string, port int) Container {
		return Container{ID: id, Server: server, Port: port, State: Waiting}
	}
	cat := func(pool, min int) *catalog.Catalog {
		return &catalog.Catalog{Manager: catalog.Manager{WarmPool: pool},
			Services: []catalog.Service{{Name: "web", Slots: 1, Replicas: catalog.Replicas{Min: min, Initial: 3, Max: 8}}}}
	}
	ids := func(cs []Container) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	tests := []struct {
		name                     string
		cat                      *catalog.Catalog
		containers               []Container
		desired                  int
		unloads, destroys, freed []string
	}{
		{
			name:       "at desired: nothing",
			cat:        cat(0, 1),
			containers: []Container{web("m-c1", "s1", 100), web("m-c2", "s1", 101), web("m-c3", "s2", 100)},
			desired:    3,
		},
		{
			name:       "servers empty out first, and are released",
			cat:        cat(0, 1),
			containers: []Container{web("m-c1", "s1", 100), web("m-c2", "s1", 101), web("m-c3", "s2", 100)},
			desired:    2,
			destroys:   []string{"m-c3"},
			freed:      []string{"s2"},
		},
		{
			name:       "newest first on equally full servers",
			cat:        cat(0, 1),
			containers: []Container{web("m-c1", "s1", 100), web("m-c2", "s1", 101), web("m-c3", "s2", 100), web("m-c4", "s2", 101)},
			desired:    3,
			destroys:   []string{"m-c4"},
		},
		{
			name:       "never below min",
			cat:        cat(0, 2),
			containers: []Container{web("m-c1", "s1", 100), web("m-c2", "s1", 101), web("m-c3", "s2", 100)},
			desired:    1,
			destroys:   []string{"m-c3"},
			freed:      []string{"s2"},
		},
		{
			name:       "a short warm pool gets the instance back",
			cat:        cat(1, 1),
			containers: []Container{web("m-c1", "s1", 100), web("m-c2", "s1", 101), web("m-c3", "s2", 100)},
			desired:    1,
			unloads:    []string{"m-c3"},
			destroys:   []string{"m-c2"},
		},
		{
			name:       "a warm pool above its size is kept for reuse",
			cat:        cat(1, 1),
			containers: []Container{web("m-c1", "s1", 100), warm("m-c2", "s1", 101), warm("m-c3", "s2", 100)},
			desired:    1,
		},
		{
			name: "a service gone from the catalog goes back to waiting",
			cat:  cat(0, 1),
			containers: []Container{web("m-c1", "s1", 100),
				{ID: "m-c2", Server: "s1", Port: 101, State: Loaded, Service: "old", Healthy: true},
				{ID: "m-c3", Server: "s2", Port: 100, State: Starting, Service: "old"}},
			desired:  1,
			unloads:  []string{"m-c2"},
			destroys: []string{"m-c3"},
			freed:    []string{"s2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := Inventory{Servers: servers, Containers: append([]Container(nil), tc.containers...)}
			plan := PlanShrink(&inv, tc.cat, func(catalog.Service) int { return tc.desired })
			assert.Equal(t, tc.unloads, ids(plan.Unloads), "unloads")
			assert.Equal(t, tc.destroys, ids(plan.Destroys), "destroys")
			assert.Equal(t, tc.freed, plan.Release, "released servers")
			for _, c := range inv.Containers {
				gone := contains(tc.unloads, c.ID) || contains(tc.destroys, c.ID)
				assert.Equal(t, gone, c.State == Draining, "%s draining", c.ID)
			}
			again := PlanShrink(&inv, tc.cat, func(catalog.Service) int { return tc.desired })
			assert.True(t, again.Empty(), "a decided shrink is not decided twice: %+v", again)
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestShrinkStrategy: what is above desired goes in one Shrink beside the
// placements, leaving alone what they and the running operations hold;
// while the pool is held nothing is unloaded into it.
func TestShrinkStrategy(t *testing.T) {
	over := func() *Inventory {
		return twoServers(loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web"), loaded("m-c3", "s1", 20002, "web"),
			loaded("m-c4", "s2", 21000, "api"))
	}
	runDecide(t, []decideCase{
		{
			name:    "web above desired: the newest goes back to the short pool",
			state:   State{Manager: mgr, Catalog: webAPI(1), Inventory: over()},
			ops:     []string{"shrink web: unload m-c3"},
			reasons: []string{"web above desired: 1"},
		},
		{
			name:  "the pool held by a running operation: the surplus waits for it",
			state: State{Manager: mgr, Catalog: webAPI(1), Inventory: over(), Running: []Keys{{Pool: true}}},
		},
		{
			name:  "the pool full: the surplus is destroyed, beside a running operation on api",
			state: State{Manager: mgr, Catalog: webAPI(0), Inventory: over(), Running: []Keys{{Services: []string{"api"}}}},
			ops:   []string{"shrink web: destroy m-c3"},
		},
		{
			name:  "web held: nothing of web goes",
			state: State{Manager: mgr, Catalog: webAPI(0), Inventory: over(), Running: []Keys{{Services: []string{"web"}}}},
		},
		{
			name:    "a service gone from the catalog goes back to the pool, its server released when emptied",
			state:   State{Manager: mgr, Catalog: cat(2, []catalog.Server{big1, big2}, svc("web", 3, 1)), Inventory: over()},
			ops:     []string{"shrink api: unload m-c4"},
			reasons: []string{"api gone from the catalog: 1"},
		},
	})
}
