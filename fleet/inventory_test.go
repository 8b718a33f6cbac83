package fleet

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

func TestDestroyedReleasesTheLeaseAndKeepsTheRecord(t *testing.T) {
	inv := Inventory{
		Servers: []Server{{ID: "s1", Slots: 4, Ports: catalog.PortRange{First: 100, Last: 101}, State: ServerReady}},
		Containers: []Container{
			{ID: "m-c1", Server: "s1", Port: 100, State: Loaded, Service: "web", Healthy: true},
			{ID: "m-c2", Server: "s1", Port: 101, State: Loaded, Service: "web"},
		},
	}
	inv.Destroyed("m-c2", "exited with status 3")
	require.Len(t, inv.Containers, 1)
	assert.Equal(t, []Container{{ID: "m-c2", Server: "s1", Port: 101, State: Failed, Service: "web", Error: "exited with status 3"}}, inv.Failed)
	ports, err := inv.Ports("s1")
	require.NoError(t, err)
	port, err := ports.Lease("m-c3")
	require.NoError(t, err)
	assert.Equal(t, 101, port, "the destroyed container's port is free again")
	assert.Equal(t, 1, inv.UsedByServer(func(string) int { return 1 })["s1"])
	inv.Destroyed("nope", "x") // unknown: nothing happens
	assert.Len(t, inv.Failed, 1)
}

func TestDestroyedKeepsTheLastMaxFailed(t *testing.T) {
	var inv Inventory
	for i := 1; i <= MaxFailed+3; i++ {
		id := fmt.Sprintf("m-c%d", i)
		inv.Containers = append(inv.Containers, Container{ID: id, Server: "s1", Port: i, State: Starting})
		inv.Destroyed(id, "failed")
	}
	require.Len(t, inv.Failed, MaxFailed)
	assert.Equal(t, "m-c4", inv.Failed[0].ID)
	assert.Equal(t, fmt.Sprintf("m-c%d", MaxFailed+3), inv.Failed[MaxFailed-1].ID)
	assert.Empty(t, inv.Containers)
}

func TestPlanProvisionHoldsServicesInBackOff(t *testing.T) {
	cat := &catalog.Catalog{
		Manager: catalog.Manager{WarmPool: 1, Servers: []catalog.Server{{Name: "s1", Address: "127.0.0.1", Slots: 8, Ports: catalog.PortRange{First: 100, Last: 199}}}},
		Services: []catalog.Service{
			{Name: "web", Slots: 1, Replicas: catalog.Replicas{Min: 1, Initial: 2, Max: 4}},
			{Name: "api", Slots: 1, Replicas: catalog.Replicas{Min: 1, Initial: 1, Max: 4}},
		},
	}
	tests := []struct {
		name string
		hold []string
		want map[string]int // service ("" = pool) -> starts
	}{
		{"nothing held", nil, map[string]int{"web": 2, "api": 1, "": 1}},
		{"web held", []string{"web"}, map[string]int{"api": 1, "": 1}},
		{"warm pool held", []string{""}, map[string]int{"web": 2, "api": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var inv Inventory
			plan := PlanProvision(&inv, cat, "m", tc.hold...)
			got := map[string]int{}
			for _, c := range plan.Starts {
				got[c.Service]++
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLoseFailsTheServersContainersAndPlacesTheirReplacementsElsewhere(t *testing.T) {
	r1, r2 := catalog.PortRange{First: 100, Last: 109}, catalog.PortRange{First: 200, Last: 209}
	cat := &catalog.Catalog{
		Manager: catalog.Manager{WarmPool: 1, Servers: []catalog.Server{
			{Name: "s1", Address: "10.0.0.1", Slots: 4, Ports: r1}, {Name: "s2", Address: "10.0.0.2", Slots: 4, Ports: r2}}},
		Services: []catalog.Service{{Name: "web", Slots: 1, Replicas: catalog.Replicas{Min: 1, Initial: 2, Max: 4}}},
	}
	inv := Inventory{
		Servers: []Server{{ID: "s1", Slots: 4, Ports: r1, State: ServerReady}, {ID: "s2", Slots: 4, Ports: r2, State: ServerReady}},
		Containers: []Container{
			{ID: "m-c1", Server: "s1", Port: 100, State: Loaded, Service: "web", Healthy: true},
			{ID: "m-c2", Server: "s2", Port: 200, State: Loaded, Service: "web", Healthy: true},
			{ID: "m-c3", Server: "s2", Port: 201, State: Waiting},
			{ID: "m-c4", Server: "s2", Port: 202, State: Failed, Service: "web", Crashed: true, Error: "exited"},
		},
		Seq: 4,
	}
	lost := inv.Lose("s2", "node unheard for 5s")
	assert.Equal(t, []string{"m-c2", "m-c3"}, containerIDs(lost), "the crash already failed stays as it was")
	assert.Equal(t, ServerLost, inv.Server("s2").State)
	for _, id := range []string{"m-c2", "m-c3"} {
		c := inv.Container(id)
		assert.Equal(t, Failed, c.State, id)
		assert.Equal(t, "node unheard for 5s", c.Error, id)
	}
	assert.True(t, inv.Container("m-c4").Crashed)

	// The replacements go to s1 (the waiting container of s2 is no use),
	// and the failed containers keep their ports while s2 is away.
	plan := PlanScale(&inv, cat, "m", Options{})
	assert.Empty(t, plan.Servers)
	assert.Empty(t, plan.Loads)
	require.Len(t, plan.Starts, 2)
	for _, c := range plan.Starts {
		assert.Equal(t, "s1", c.Server)
	}
	// Nothing is destroyed on a lost server: its node cannot be reached.
	assert.Empty(t, PlanShrink(&inv, cat, nil).Destroys)
	assert.Empty(t, PlanConsolidation(&inv, cat))

	// Back and fenced: every failed container of s2 goes, with its lease.
	assert.Equal(t, 3, inv.Fenced("s2"))
	assert.Equal(t, ServerReady, inv.Server("s2").State)
	assert.Empty(t, inv.OnServer("s2"))
	assert.Equal(t, []string{"m-c2", "m-c3", "m-c4"}, containerIDs(inv.Failed))
	ports, err := inv.Ports("s2")
	require.NoError(t, err)
	assert.Equal(t, 10, ports.free())
}

func TestLoseAndFencedOfAnUnknownServerChangeNothing(t *testing.T) {
	inv := Inventory{Containers: []Container{{ID: "m-c1", Server: "s1", Port: 100, State: Loaded}}}
	assert.Empty(t, inv.Lose("s9", "x"))
	assert.Zero(t, inv.Fenced("s9"))
	assert.Equal(t, Loaded, inv.Containers[0].State)
}

func containerIDs(cs []Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}
