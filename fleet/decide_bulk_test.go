package fleet

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

// TestBulkProvisioningRunsSideBySide: a fleet of 10,000 placed 500 at a
// time (Limit) does not wait for the few free slots of the servers the
// first operation launches: the next decision, made while it runs, places
// the next 500 on servers of its own.
func TestBulkProvisioningRunsSideBySide(t *testing.T) {
	c := &catalog.Catalog{Manager: catalog.Manager{Kind: catalog.KindSimulated, WarmPool: 100, Simulated: catalog.Simulated{Servers: 600, Slots: 21}}}
	for i := range 50 {
		c.Services = append(c.Services, catalog.Service{Name: fmt.Sprintf("svc-%02d", i+1), Replicas: catalog.Replicas{Min: 1, Initial: 200, Max: 220}})
	}
	c.Default()
	inv := &Inventory{}
	var running []Keys
	for round := 1; round <= 3; round++ {
		d := Decide(State{Inventory: inv, Catalog: c, Manager: "m", Limit: 500, Running: running}, now)
		require.Len(t, d.Ops, 1, "round %d", round)
		assert.Equal(t, KindProvision, d.Ops[0].Kind)
		assert.Len(t, d.Ops[0].Place.Starts, 500, "round %d", round)
		assert.True(t, d.Capped)
		for _, k := range running {
			assert.False(t, k.Overlaps(d.Ops[0].Keys), "round %d", round)
		}
		inv.Apply(d)
		running = append(running, d.Ops[0].Keys)
	}
	// A single instance still waits for a held server's room.
	small := &Inventory{Seq: 1, Servers: []Server{{ID: "m-s1", Slots: 21, Ports: catalog.PortRange{First: 20000, Last: 20020}, State: ServerLaunching}},
		Containers: []Container{starting("m-c1", "m-s1", 20000, "svc-01")}}
	one := &catalog.Catalog{Manager: c.Manager, Services: []catalog.Service{{Name: "svc-01", Replicas: catalog.Replicas{Min: 1, Initial: 2, Max: 3}}}}
	one.Manager.WarmPool = 0
	one.Default()
	d := Decide(State{Inventory: small, Catalog: one, Manager: "m", Running: []Keys{{Services: []string{"svc-02"}, Servers: []string{"m-s1"}}}}, now)
	assert.Empty(t, d.Ops, "one instance waits for the 20 free slots of m-s1")
}
