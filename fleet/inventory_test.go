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
	assert.Equal(t, 1, inv.Used("s1", func(string) int { return 1 }))
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
