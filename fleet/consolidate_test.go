package fleet

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/msm-project/msm/catalog"
)

func TestPlanConsolidation(t *testing.T) {
	r := catalog.PortRange{First: 100, Last: 199}
	cat := &catalog.Catalog{Services: []catalog.Service{{Name: "web", Slots: 1}, {Name: "big", Slots: 3}}}
	srv := func(id string, slots int, state ServerState) Server {
		return Server{ID: id, Slots: slots, Ports: r, State: state}
	}
	ctr := func(id, server, svc string, port int) Container {
		return Container{ID: id, Server: server, Port: port, State: Loaded, Service: svc, Healthy: true}
	}
	tests := []struct {
		name       string
		servers    []Server
		containers []Container
		want       string
	}{
		{"one server: nothing", []Server{srv("s1", 4, ServerReady)},
			[]Container{ctr("c1", "s1", "web", 100)}, ""},
		{"the least-used server fits on the other", []Server{srv("s1", 4, ServerReady), srv("s2", 4, ServerReady)},
			[]Container{ctr("c1", "s1", "web", 100), ctr("c2", "s1", "web", 101), ctr("c3", "s2", "web", 100)}, "s2"},
		{"no room on the others", []Server{srv("s1", 2, ServerReady), srv("s2", 2, ServerReady)},
			[]Container{ctr("c1", "s1", "web", 100), ctr("c2", "s1", "web", 101), ctr("c3", "s2", "web", 100)}, ""},
		{"slots must fit per instance", []Server{srv("s1", 4, ServerReady), srv("s2", 4, ServerReady)},
			[]Container{ctr("c1", "s1", "web", 100), ctr("c2", "s1", "web", 101), ctr("c3", "s2", "big", 100)}, ""},
		{"a drain in progress waits", []Server{srv("s1", 4, ServerReady), srv("s2", 4, ServerDraining)},
			[]Container{ctr("c1", "s1", "web", 100), ctr("c3", "s2", "web", 100)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := Inventory{Servers: tc.servers, Containers: tc.containers}
			assert.Equal(t, tc.want, PlanConsolidation(&inv, cat))
		})
	}
}

// TestConsolidateStrategy: with the policy on and nothing else to do or
// running, the least-used server whose containers fit elsewhere is
// drained; never beside another operation.
func TestConsolidateStrategy(t *testing.T) {
	policy := func() *catalog.Catalog {
		c := webAPI(0)
		c.Manager.Consolidate = true
		return c
	}
	spread := func() *Inventory {
		return twoServers(loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web"), loaded("m-c3", "s2", 21000, "api"))
	}
	runDecide(t, []decideCase{
		{
			name:    "s2 holds one container that fits on s1: drained",
			state:   State{Manager: mgr, Catalog: policy(), Inventory: spread()},
			ops:     []string{"consolidate s2: drain s2"},
			reasons: []string{"s2 is the least used server and the others have room for its 1 container(s)"},
		},
		{
			name:  "the policy off: nothing",
			state: State{Manager: mgr, Catalog: webAPI(0), Inventory: spread()},
		},
		{
			name:  "an operation running: nothing",
			state: State{Manager: mgr, Catalog: policy(), Inventory: spread(), Running: []Keys{{Services: []string{"web"}}}},
		},
		{
			name: "another operation decided now: nothing",
			state: State{Manager: mgr, Catalog: policy(), Inventory: spread(),
				Desired: func(s catalog.Service) int {
					if s.Name == "web" {
						return 3
					}
					return s.Replicas.Initial
				}, Extending: []string{"web"}},
			ops: []string{"extend web: start m-c10@s2:21001=web"},
		},
	})
}
