package fleet

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

// TestDrainExtendsElsewhereBeforeItDestroys walks a drain of s1 through
// the decisions the Manager makes: replacements on s2 first, the old
// instances removed only once the replacements are healthy, then s1
// released.
func TestDrainExtendsElsewhereBeforeItDestroys(t *testing.T) {
	r := catalog.PortRange{First: 100, Last: 199}
	cat := &catalog.Catalog{
		Manager: catalog.Manager{WarmPool: 1, Servers: []catalog.Server{
			{Name: "s1", Address: "127.0.0.1", Slots: 4, Ports: r}, {Name: "s2", Address: "127.0.0.2", Slots: 4, Ports: r}}},
		Services: []catalog.Service{{Name: "web", Slots: 1, Replicas: catalog.Replicas{Min: 1, Initial: 2, Max: 4}}},
	}
	inv := Inventory{
		Servers: []Server{{ID: "s1", Slots: 4, Ports: r, State: ServerDraining}, {ID: "s2", Slots: 4, Ports: r, State: ServerReady}},
		Containers: []Container{
			{ID: "m-c1", Server: "s1", Port: 100, State: Loaded, Service: "web", Healthy: true},
			{ID: "m-c2", Server: "s1", Port: 101, State: Loaded, Service: "web", Healthy: true},
			{ID: "m-c3", Server: "s1", Port: 102, State: Waiting},
		},
		Seq: 3,
	}
	// 1. Nothing is removed while no replacement serves.
	require.True(t, PlanShrink(&inv, cat, nil).Empty(), "no destroy before the replacements are healthy")
	// 2. Replacements (and the pool) go to s2, none to the draining s1.
	add := PlanScale(&inv, cat, "m", Options{})
	require.Len(t, add.Starts, 3)
	for _, c := range add.Starts {
		assert.Equal(t, "s2", c.Server, "%s placed on the draining server", c.ID)
	}
	assert.Empty(t, add.Loads, "the waiting container of s1 is not used")
	// 3. While they start, still nothing is removed.
	require.True(t, PlanShrink(&inv, cat, nil).Empty())
	// 4. Healthy now: s1's instances and waiting container go, s1 is released.
	for i := range inv.Containers {
		c := &inv.Containers[i]
		if c.Server == "s2" {
			if c.Service != "" {
				c.State, c.Healthy = Loaded, true
			} else {
				c.State = Waiting
			}
		}
	}
	shrink := PlanShrink(&inv, cat, nil)
	var gone []string
	for _, c := range shrink.Destroys {
		gone = append(gone, c.ID)
	}
	assert.ElementsMatch(t, []string{"m-c1", "m-c2", "m-c3"}, gone)
	assert.Empty(t, shrink.Unloads)
	assert.Equal(t, []string{"s1"}, shrink.Release)
	// 5. Once they are removed, an empty draining server is still released.
	for _, id := range gone {
		inv.RemoveContainer(id)
	}
	assert.Equal(t, []string{"s1"}, PlanShrink(&inv, cat, nil).Release)
}
